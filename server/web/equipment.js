// The desk's 设备 (#assets): a project's asset register (设备台账, docs/maintenance.md) and the
// problem records (问题单) the server raised on repeated repairs, each made into a preventive
// order in one step; an asset (#assets/<id>) with its QR code to print, its maintenance plans
// and their next services, the services the scheduler made, its problems and the orders naming
// it. Supervisors and above add assets and plans; office staff read and order.
import { addStrings, api, busy, field, fmtTime, h, label, muted, section, shanghaiDate, statusBadge, t, table, toast } from '/assets/common.js';

const TYPES = ['elevator', 'water_pump', 'water_tank', 'fire_system', 'power', 'gate', 'other'];

addStrings({
  tab_assets: ['设备', 'Assets'], assets_title: ['设备台账', 'Asset register'],
  assets_intro: ['登记电梯、水泵、水箱、消防等设备及其维保计划;系统按计划提前生成维保工单,两次维保间隔不超过法定上限(节假日、调休也不例外)。同一设备短期内反复报修,会自动生成问题单。',
    'Lifts, pumps, tanks and fire systems with their maintenance plans: the server makes each service\'s order ahead of time, never more than the legal gap apart (holidays and 调休 included). An asset repaired again and again raises a problem record.'],
  assets_none: ['本项目暂无设备', 'No asset in this project'], asset_name: ['设备名称', 'Name'], asset_type: ['设备类型', 'Type'],
  asset_place: ['位置', 'Place'], asset_make: ['品牌型号', 'Make'], asset_installed: ['安装日期', 'Installed'],
  asset_inspection: ['下次年检', 'Next legal inspection'], asset_building: ['楼栋(可空)', 'Building (optional)'],
  asset_add: ['新增设备', 'Add an asset'], asset_added: ['设备已登记', 'Asset registered'], asset_save: ['登记', 'Register'],
  asset_type_elevator: ['电梯', 'Lift'], asset_type_water_pump: ['水泵', 'Water pump'], asset_type_water_tank: ['二次供水水箱', 'Water tank'],
  asset_type_fire_system: ['消防系统', 'Fire system'], asset_type_power: ['配电设备', 'Power distribution'],
  asset_type_gate: ['门禁道闸', 'Gate and access'], asset_type_other: ['其他设备', 'Other'],
  asset_whole_project: ['全小区', 'Whole community'], asset_back: ['设备台账', 'Asset register'],
  asset_qr: ['设备二维码(贴于设备上,扫码报修、巡检)', 'QR code (stick it on the asset: scan to report or inspect)'],
  asset_print_qr: ['打印二维码', 'Print the QR code'],
  plans_title: ['维保计划', 'Maintenance plans'], plans_none: ['暂无维保计划', 'No plan'],
  plan_rule: ['周期', 'Repeats'], plan_gap: ['最长间隔(天)', 'Longest gap (days)'], plan_lead: ['提前生成(天)', 'Made ahead (days)'],
  plan_starts: ['首次日期', 'First date'], plan_checklist: ['检查项(每行一项)', 'Checklist (one item a line)'],
  plan_next: ['接下来', 'Next'], plan_add: ['新增维保计划', 'Add a plan'], plan_added: ['维保计划已保存', 'Plan saved'], plan_save: ['保存计划', 'Save the plan'],
  plan_due: ['{0} 到期(计划日 {1},{2} 生成工单)', 'due {0} (rule date {1}; order made {2})'],
  preset_fortnight: ['每半月(电梯)', 'Every half month (lifts)'], preset_month: ['每月', 'Monthly'],
  preset_quarter: ['每季度', 'Quarterly'], preset_half_year: ['每半年(水箱清洗)', 'Every six months (tanks)'], preset_year: ['每年', 'Yearly'],
  preset_custom: ['自定义(RRULE)', 'Custom (RRULE)'],
  services_title: ['维保记录', 'Services'], services_none: ['尚未生成维保工单', 'No service order made yet'],
  service_nominal: ['计划日', 'Rule date'], service_due: ['到期日', 'Due'], service_order: ['工单', 'Order'], service_done: ['完成日', 'Done'],
  problems_title: ['问题单', 'Problem records'], problems_open_none: ['暂无待处理的问题单', 'No open problem'],
  problems_intro: ['同一设备短期内反复报修(按故障预警规则)自动生成问题单:生成预防性检修工单,或确认无需处理后忽略。',
    'An asset repaired again and again (by the failure rules) raises a problem: make its preventive order, or dismiss it.'],
  problem_repeated: ['{1} 天内故障 {0} 次', '{0} faults in {1} days'], problem_outlier: ['{1} 天内故障 {0} 次,远多于同类设备(预期 {2})', '{0} faults in {1} days, far more than its peers ({2} expected)'],
  problem_order: ['生成预防性检修工单', 'Make the preventive order'], problem_ordered: ['已生成工单 {0}', 'Order {0} made'],
  problem_dismiss: ['忽略', 'Dismiss'], problem_dismissed: ['问题单已忽略', 'Problem dismissed'],
  problem_dismiss_confirm: ['确认忽略该问题单?', 'Dismiss this problem?'],
  problem_status_open: ['待处理', 'Open'], problem_status_ordered: ['已生成工单', 'Ordered'], problem_status_dismissed: ['已忽略', 'Dismissed'],
  problem_orders: ['相关报修 {0} 单', '{0} repairs'],
  asset_orders_title: ['关联工单', 'Orders naming it'], asset_orders_none: ['暂无关联工单', 'No order names it'],
  pm_title: ['计划维保与设备可靠性', 'Planned maintenance and reliability'],
  pm_compliance: ['维保按期完成率', 'PM compliance'], pm_compliance_def: ['到期日前完成的维保,占已完成或已逾期维保的比例', 'Services done by their due day, of those done or overdue'],
  pm_due: ['到期维保', 'Services due'], pm_overdue: ['逾期未完成', 'Overdue'], pm_late: ['逾期完成', 'Done late'],
  pm_ratio: ['报修 : 计划维保', 'Repairs : planned'], pm_repeat: ['返修率', 'Repeat repairs'],
  pm_repeat_def: ['同一设备同一故障的再次报修(距该故障首次报修不超过故障预警规则的“同一故障”天数)所占比例', 'Repairs the failure rules count as the same fault again (within its same-fault days of that fault\'s first repair)'],
  pm_type: ['设备类型', 'Asset type'], pm_assets: ['台数', 'Assets'], pm_failures: ['故障', 'Failures'],
  pm_mtbf: ['平均故障间隔(工作小时)', 'MTBF (working hours)'], pm_mttr: ['平均修复时间(工作小时)', 'MTTR (working hours)'],
});

const PRESETS = [
  ['preset_fortnight', 'FREQ=WEEKLY;INTERVAL=2', 15, 3],
  ['preset_month', 'FREQ=MONTHLY', 31, 5],
  ['preset_quarter', 'FREQ=MONTHLY;INTERVAL=3', 92, 7],
  ['preset_half_year', 'FREQ=MONTHLY;INTERVAL=6', 183, 14],
  ['preset_year', 'FREQ=YEARLY', 366, 30],
];

const supervisor = (me) => ['supervisor', 'manager', 'admin'].includes(me?.role);
const typeLabel = (code) => t(`asset_type_${TYPES.includes(code) ? code : 'other'}`);
const input = (name, attrs = {}) => h('input', { name, 'data-testid': `asset-${name}`, autocomplete: 'off', ...attrs });
const where = (a) => `${a.building ? `${a.building}栋 · ` : ''}${a.place}`;

// The dashboard's maintenance figures (`GET /api/v1/dashboard/maintenance`).
export function maintenanceFigures(m) {
  const pct = (x) => (x == null ? null : `${Math.round(x * 100)}%`);
  const stat = (key, value, def, testid) => h('div', { class: 'stat', title: def ? t(def) : null, 'data-testid': testid },
    h('div', { class: 'muted' }, t(key), def ? ' ⓘ' : ''),
    h('div', { class: 'stat-value' }, value == null ? h('span', { class: 'muted no-data' }, t('no_data')) : String(value)));
  const hours = (x) => (x == null ? '—' : x.toFixed(1));
  return [
    h('div', { class: 'stats' },
      stat('pm_compliance', pct(m.compliance), 'pm_compliance_def', 'pm-compliance'),
      stat('pm_due', m.services_due, null, 'pm-due'), stat('pm_late', m.done_late, null, 'pm-late'),
      stat('pm_overdue', m.overdue, null, 'pm-overdue'),
      stat('pm_ratio', `${m.reactive_orders} : ${m.preventive_orders}`, null, 'pm-ratio'),
      stat('pm_repeat', pct(m.repeat_repair_rate), 'pm_repeat_def', 'pm-repeat')),
    m.reliability.length ? table([t('pm_type'), t('pm_assets'), t('pm_failures'), t('pm_mtbf'), t('pm_mttr')],
      m.reliability.map((r) => h('tr', { 'data-testid': 'pm-reliability' }, h('td', {}, typeLabel(r.asset_type)), h('td', {}, r.assets),
        h('td', {}, r.failures), h('td', {}, hours(r.mtbf_hours)), h('td', {}, hours(r.mttr_hours))))) : null,
  ];
}

export function problemLine(p) {
  return p.reason === 'outlier' ? t('problem_outlier', p.count, p.days, (p.expected ?? 0).toFixed(1)) : t('problem_repeated', p.count, p.days);
}

// One problem: what it is, and (open) its two answers.
function problemRow(ctx, p, withAsset) {
  const actions = p.status === 'open' ? h('div', { class: 'buttons' },
    h('button', { type: 'button', class: 'primary', 'data-testid': 'problem-order', onclick: (e) => busy(e.currentTarget, async () => {
      const made = await api(`/api/v1/problems/${encodeURIComponent(p.id)}/order`, { method: 'POST' });
      toast(t('problem_ordered', made.number ?? ''));
      location.hash = `#order/${made.order_id}`;
    }) }, t('problem_order')),
    supervisor(ctx.me) && h('button', { type: 'button', 'data-testid': 'problem-dismiss', onclick: (e) => {
      if (!confirm(t('problem_dismiss_confirm'))) return;
      busy(e.currentTarget, async () => {
        await api(`/api/v1/problems/${encodeURIComponent(p.id)}/dismiss`, { method: 'POST' });
        toast(t('problem_dismissed'));
        ctx.reload();
      });
    } }, t('problem_dismiss')))
    : p.order_id ? h('a', { href: `#order/${p.order_id}`, 'data-testid': 'problem-order-link' }, t('service_order')) : null;
  return h('div', { class: 'card problem', 'data-testid': 'problem', 'data-status': p.status },
    h('div', { class: 'row-top' },
      h('strong', {}, withAsset ? [h('a', { href: `#assets/${p.asset_id}` }, p.asset_name), ' · '] : null, problemLine(p)),
      h('span', { class: `badge problem-${p.status}` }, t(`problem_status_${p.status}`))),
    h('div', { class: 'muted' }, withAsset ? `${where(p)} · ` : '', fmtTime(p.raised_at), ' · ', t('problem_orders', p.orders.length)),
    actions);
}

export function assetsView(ctx, arg) {
  if (arg) return assetView(ctx, arg);
  const projects = ctx.me.projects ?? [];
  const wanted = new URLSearchParams(location.hash.split('?')[1] ?? '').get('project');
  const project = projects.some((p) => p.code === wanted) ? wanted : projects[0]?.code;
  const chips = h('div', { class: 'chips asset-chips' }, projects.map((p) =>
    h('a', { href: `#assets?project=${encodeURIComponent(p.code)}`, class: `chip ${p.code === project ? 'active' : ''}`, 'data-testid': 'asset-project' }, p.name ?? p.code)));
  const list = h('div', { 'data-testid': 'asset-list' });
  const problems = h('div', { class: 'stack', 'data-testid': 'problem-list' });
  const form = supervisor(ctx.me) && project && addAssetForm(ctx, project);
  ctx.mount([h('h2', {}, t('assets_title')), muted(t('assets_intro')), chips,
    section(t('problems_title'), 'problems', muted(t('problems_intro')), problems),
    h('section', { class: 'card' }, list), form], async () => {
    const [assets, open] = await Promise.all([
      project ? api('/api/v1/assets', { query: { project } }) : [],
      api('/api/v1/problems', { query: { status: 'open' } }),
    ]);
    list.replaceChildren(assets.length ? table([t('asset_name'), t('asset_type'), t('asset_place'), t('asset_make'), t('asset_inspection')],
      assets.map((a) => h('tr', { 'data-testid': 'asset-row', 'data-id': a.id },
        h('td', {}, h('a', { href: `#assets/${a.id}`, 'data-testid': 'asset-link' }, a.name)), h('td', {}, typeLabel(a.asset_type)),
        h('td', {}, where(a)), h('td', {}, a.make || '—'), h('td', {}, a.inspection_due_on ?? '—')))) : muted(t('assets_none')));
    problems.replaceChildren(...(open.length ? open.map((p) => problemRow(ctx, p, true)) : [muted(t('problems_open_none'))]));
  });
}

function addAssetForm(ctx, project) {
  const form = h('form', { class: 'card form-grid', 'data-testid': 'asset-form' },
    h('h3', { class: 'wide' }, t('asset_add')),
    field(t('asset_name'), input('name', { required: true, maxlength: 64, placeholder: '3号电梯' })),
    field(t('asset_type'), h('select', { name: 'asset_type', 'data-testid': 'asset-type' }, TYPES.map((c) => h('option', { value: c }, typeLabel(c))))),
    field(t('asset_building'), input('building', { maxlength: 16 })),
    field(t('asset_place'), input('place', { required: true, maxlength: 64, placeholder: '3单元电梯井' })),
    field(t('asset_make'), input('make', { maxlength: 64 })),
    field(t('asset_installed'), input('installed_on', { type: 'date' })),
    field(t('asset_inspection'), input('inspection_due_on', { type: 'date' })),
    h('div', { class: 'buttons wide' }, h('button', { type: 'submit', class: 'primary', 'data-testid': 'asset-save' }, t('asset_save'))));
  form.addEventListener('submit', (e) => {
    e.preventDefault();
    const v = (name) => form.elements[name].value.trim();
    busy(form.querySelector('[type=submit]'), async () => {
      const made = await api('/api/v1/assets', { method: 'POST', body: {
        project, name: v('name'), asset_type: v('asset_type'), building: v('building') || null, place: v('place'),
        make: v('make'), installed_on: v('installed_on') || null, inspection_due_on: v('inspection_due_on') || null,
      } });
      toast(t('asset_added'));
      location.hash = `#assets/${made.id}`;
    });
  });
  return form;
}

function assetView(ctx, id) {
  const url = `/api/v1/assets/${encodeURIComponent(id)}`;
  const head = h('div', { class: 'card', 'data-testid': 'asset' });
  const plans = h('div', { class: 'stack', 'data-testid': 'plans' });
  const services = h('div', { 'data-testid': 'services' });
  const problems = h('div', { class: 'stack', 'data-testid': 'asset-problems' });
  const orders = h('div', { 'data-testid': 'asset-orders' });
  ctx.mount([h('p', { class: 'back' }, h('a', { href: '#assets' }, `← ${t('asset_back')}`)), head,
    section(t('plans_title'), 'plans-section', plans, supervisor(ctx.me) && addPlanForm(ctx, url)),
    section(t('services_title'), 'services-section', services),
    section(t('problems_title'), 'asset-problems-section', problems),
    section(t('asset_orders_title'), 'asset-orders-section', orders)], async () => {
    const [a, qr] = await Promise.all([api(url), api(`${url}/qr.svg`, { raw: true }).then((r) => r.text()).catch(() => null)]);
    const image = qr && h('img', { src: `data:image/svg+xml;charset=utf-8,${encodeURIComponent(qr)}`, alt: a.name, class: 'qr', 'data-testid': 'asset-qr' });
    head.replaceChildren(h('div', { class: 'row-top' }, h('h2', { 'data-testid': 'asset-title' }, a.name), h('span', { class: 'badge' }, typeLabel(a.asset_type))),
      h('div', { class: 'asset-head' },
        h('dl', { class: 'facts' },
          h('dt', {}, t('asset_place')), h('dd', {}, where(a)),
          h('dt', {}, t('asset_make')), h('dd', {}, a.make || '—'),
          h('dt', {}, t('asset_installed')), h('dd', {}, a.installed_on ?? '—'),
          h('dt', {}, t('asset_inspection')), h('dd', {}, a.inspection_due_on ?? '—')),
        image && h('figure', { class: 'asset-qr' }, image, h('figcaption', { class: 'muted' }, t('asset_qr')))));
    plans.replaceChildren(...(a.plans.length ? a.plans.map((p) => h('div', { class: 'plan', 'data-testid': 'plan' },
      h('div', {}, h('strong', {}, ruleText(p.rule)), ' · ', t('plan_gap'), ' ', p.max_gap_days, ' · ', t('plan_lead'), ' ', p.lead_days),
      p.checklist.length ? h('div', { class: 'muted' }, p.checklist.join(' / ')) : null,
      h('ul', { class: 'upcoming' }, p.upcoming.map((u) => h('li', { 'data-testid': 'plan-upcoming' }, t('plan_due', u.due, u.nominal, u.issue_on))))))
      : [muted(t('plans_none'))]));
    services.replaceChildren(a.services.length ? table([t('service_nominal'), t('service_due'), t('service_order'), t('status'), t('service_done')],
      a.services.map((s) => h('tr', { 'data-testid': 'service', 'data-late': String(!!s.done && s.done > s.due) },
        h('td', {}, s.nominal), h('td', {}, s.due),
        h('td', {}, s.number ? h('a', { href: `#order/${s.order_id}` }, s.number) : '—'),
        h('td', {}, s.status ? statusBadge(s.status) : '—'), h('td', {}, s.done ?? '—')))) : muted(t('services_none')));
    problems.replaceChildren(...(a.problems.length ? a.problems.map((p) => problemRow(ctx, { ...p, asset_name: a.name }, false)) : [muted(t('none'))]));
    orders.replaceChildren(a.orders.length ? table([t('service_order'), t('kind'), t('status'), t('created_at')],
      a.orders.map((o) => h('tr', { 'data-testid': 'asset-order' },
        h('td', {}, h('a', { href: `#order/${o.order_id}` }, o.number ?? '—')), h('td', {}, label('kinds', o.kind)),
        h('td', {}, statusBadge(o.status)), h('td', {}, fmtTime(o.created_at))))) : muted(t('asset_orders_none')));
  });
}

const ruleText = (rule) => {
  const preset = PRESETS.find(([, r]) => r === rule);
  return preset ? t(preset[0]) : rule;
};

function addPlanForm(ctx, url) {
  const rule = input('rule', { value: PRESETS[0][1], required: true, maxlength: 500 });
  const gap = input('max_gap_days', { type: 'number', min: 1, max: 3660, value: PRESETS[0][2], required: true });
  const lead = input('lead_days', { type: 'number', min: 0, value: PRESETS[0][3], required: true });
  const preset = h('select', { 'data-testid': 'plan-preset', onchange: () => {
    const p = PRESETS.find(([key]) => key === preset.value);
    rule.readOnly = !p;
    if (p) { rule.value = p[1]; gap.value = p[2]; lead.value = p[3]; }
  } }, PRESETS.map(([key]) => h('option', { value: key }, t(key))), h('option', { value: 'custom' }, t('preset_custom')));
  rule.readOnly = true;
  const form = h('form', { class: 'form-grid plan-form', 'data-testid': 'plan-form' },
    h('h3', { class: 'wide' }, t('plan_add')),
    field(t('plan_rule'), preset), field('RRULE', rule), field(t('plan_gap'), gap), field(t('plan_lead'), lead),
    field(t('plan_starts'), input('starts_on', { type: 'date', value: shanghaiDate(Date.now()), required: true })),
    field(t('plan_checklist'), h('textarea', { name: 'checklist', 'data-testid': 'asset-checklist', rows: 3 }), 'wide'),
    h('div', { class: 'buttons wide' }, h('button', { type: 'submit', class: 'primary', 'data-testid': 'plan-save' }, t('plan_save'))));
  form.addEventListener('submit', (e) => {
    e.preventDefault();
    busy(form.querySelector('[type=submit]'), async () => {
      await api(`${url}/plans`, { method: 'POST', body: {
        rule: rule.value.trim(), starts_on: form.elements.starts_on.value, max_gap_days: Number(gap.value), lead_days: Number(lead.value),
        checklist: form.elements.checklist.value.split('\n').map((s) => s.trim()).filter(Boolean),
      } });
      toast(t('plan_added'));
      ctx.reload();
    });
  });
  return form;
}
