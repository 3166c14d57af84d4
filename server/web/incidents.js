// The desk's 事件 (#incidents): complaint surges the server answered as one incident
// (docs/incidents.md), open ones first; an incident (#incidents/<number>) with its place, level
// and member orders (each still its household's own, closed by its owner), and 处理完毕 (resolve:
// it takes no more reports); its notices to owners (停水通知) and what its level sets in motion.
// 服务监测 (#deviations): the service standard's figures and their deviation episodes.
// `openIncidents` and `openDeviations` feed the tab's badge and the banner above every view.
import { addStrings, api, busy, field, fmtTime, h, label, localInputToMs, muted, pct, place, statusBadge, t, table, toast } from '/assets/common.js';

addStrings({
  tab_incidents: ['事件', 'Incidents'], incidents_title: ['事件单', 'Incidents'],
  incidents_intro: ['同一立管、楼栋或小区短时间内多户反映同一类问题时,系统自动合并为一个事件;各户工单仍由各户业主确认闭环。',
    'When households of one riser, building or community report the same trouble within minutes, the server answers them as one incident; each household\'s order still closes by its owner\'s confirmation.'],
  incidents_open: ['处理中', 'Open'], incidents_all: ['全部', 'All'], incidents_none: ['暂无事件', 'No incident'],
  incident_n: ['事件 #{0}', 'Incident #{0}'], incident_households: ['{0} 户 / {1} 单', '{0} households / {1} orders'],
  incident_since: ['首报 {0}', 'first report {0}'], incident_state_open: ['处理中', 'Open'], incident_state_resolved: ['已处理', 'Resolved'],
  incident_state_merged: ['已合并', 'Merged'], incident_level_IV: ['Ⅳ级 一般', 'Level IV'], incident_level_III: ['Ⅲ级 较大', 'Level III'],
  incident_level_II: ['Ⅱ级 重大', 'Level II'], incident_level_I: ['Ⅰ级 特别重大', 'Level I'], incident_life_safety: ['涉及人身安全', 'Life safety'],
  incident_members: ['涉及工单', 'Member orders'], incident_resolve: ['处理完毕', 'Resolve'],
  incident_resolve_confirm: ['确认事件已处理完毕?之后的报修将不再并入此事件。', 'Resolve this incident? Later reports will not join it.'],
  incident_resolved: ['事件已处理', 'Incident resolved'],
  incident_banner: ['检测到 {0} 个处理中的事件:{1}', '{0} open incident(s): {1}'], incident_view: ['查看', 'View'],
  incident_all_categories: ['多类问题', 'Several categories'], incident_project: ['全小区', 'Whole community'],
  incident_riser: ['{0}单元{1}立管', 'entrance {0} riser {1}'], incident_riser_only: ['{0}立管', 'riser {0}'],
  incident_assign: ['待派单的 {0} 单全部派给', 'Assign the {0} waiting orders to'], incident_assign_go: ['派单', 'Assign'],
  incident_response: ['本级响应', 'This level\'s response'], incident_told: ['已通知', 'Told'],
  incident_cover_yes: ['成员工单时限由事件统一承担:首报工单按时限预警和超时,其余工单处理期间不单独预警、不计超时。',
    'The incident carries its members\' deadlines: its first report warns and breaches; the others are not warned nor counted as breached while it is open.'],
  incident_cover_no: ['各户工单时限照常计算(涉及人身安全的事件不合并时限)。', 'Every household\'s order keeps its own deadlines (lives at risk: none is covered).'],
  incident_reach_affected: ['通知范围:事件范围内全部住户', 'Notice: every unit under the incident'],
  incident_reach_reporters: ['通知范围:已报修住户', 'Notice: the households that reported'],
  incident_notices: ['业主通知', 'Notices to owners'], incident_notice_default: ['尚未发布通知,业主看到的是:', 'No notice written yet; owners see:'],
  incident_notice_body: ['通知内容', 'Notice'], incident_notice_expected: ['预计恢复时间', 'Expected back'],
  incident_notice_send: ['发布通知', 'Publish'], incident_notice_sent: ['通知已发布', 'Notice published'],
  incident_notice_placeholder: ['如:3栋2单元立管爆裂,正在抢修,预计今晚22:00前恢复供水。', 'e.g. The riser burst; repairs under way, water back by 22:00.'],
  incident_expected: ['预计 {0} 恢复', 'expected back {0}'],
  tab_deviations: ['服务监测', 'Service standard'], deviations_title: ['服务标准监测', 'The service standard, watched'],
  deviations_intro: ['按滚动窗口({0} 小时)统计各项目的响应及时率、满意率和各类工单时限达标率;低于目标时开启一次偏离并通知,恢复到目标以上 {1} 后结束。',
    'Over a rolling window ({0} hours): response in time and satisfaction per project, deadlines kept per project and category; a figure below its target opens one episode (told once), which ends when it is back {1} above.'],
  measure_response: ['响应及时率', 'Response in time'], measure_satisfaction: ['满意率', 'Satisfaction'], measure_deadlines: ['时限达标率', 'Deadlines kept'],
  deviation_state_deviating: ['偏离中', 'Deviating'], deviation_state_below: ['低于目标(样本不足)', 'Below (too few orders)'], deviation_state_ok: ['达标', 'On target'],
  deviation_measure: ['指标', 'Measure'], deviation_scope: ['范围', 'Scope'], deviation_value: ['当前', 'Now'], deviation_target: ['目标', 'Target'],
  deviation_orders: ['样本', 'Orders'], deviation_episodes: ['偏离记录(近30天)', 'Episodes (30 days)'], deviation_opened: ['开始', 'Opened'],
  deviation_closed: ['恢复', 'Recovered'], deviation_worst: ['最低', 'Worst'], deviation_ongoing: ['持续中', 'Ongoing'],
  deviation_banner: ['服务标准偏离:{0}', 'Off the standard: {0}'], stage_incident: ['事件', 'Incident'], stage_deviation: ['服务偏离', 'Deviation'],
  level_IV: ['Ⅳ级', 'Level IV'], level_III: ['Ⅲ级', 'Level III'], level_II: ['Ⅱ级', 'Level II'], level_I: ['Ⅰ级', 'Level I'],
  incident_merge: ['并入事件', 'Merge into'], incident_merge_go: ['合并', 'Merge'], incident_merge_pick: ['选择事件…', 'Choose an incident…'],
  incident_merge_confirm: ['确认将本事件并入事件 #{0}?', 'Merge this incident into incident #{0}?'], incident_merged: ['已合并', 'Merged'],
  incident_split: ['拆分所选 {0} 单为新事件', 'Split the {0} chosen into a new incident'], incident_split_done: ['已拆分为事件 #{0}', 'Split into incident #{0}'],
  incident_merged_into: ['已并入事件 #{0}', 'Merged into incident #{0}'],
  incident_suggestions: ['建议并入本事件', 'Suggested to join'],
  incident_suggestions_intro: ['以下报修与事件同址同类,但系统把握不足(低于设定的自动并入置信度),请逐单确认。',
    'These reports share the incident\'s place and category, but the detector was not sure enough (below the set confidence): decide each.'],
  incident_suggestions_n: ['{0} 单待确认', '{0} to decide'], incident_join: ['并入事件', 'Join'], incident_dismiss: ['不属于此事件', 'Not this incident'],
  incident_joined: ['已并入事件', 'Joined the incident'], incident_dismissed: ['已排除', 'Dismissed'],
  level_response: ['响应及时率', 'Response in time'], level_satisfaction: ['满意率', 'Satisfaction'], level_deadlines: ['时限达标率', 'Deadlines kept'],
});

// Where an incident is, as the desk says it (the server's `place_zh` on the detail).
export function incidentPlace(i) {
  if (!i.building) return t('incident_project');
  if (!i.riser) return t('building_n', i.building);
  const [entrance, room] = i.riser.split('*');
  const stack = entrance ? t('incident_riser', entrance.replace(/-$/, ''), room) : t('incident_riser_only', room);
  return `${t('building_n', i.building)} ${stack}`;
}

const category = (code) => code === '*' ? t('incident_all_categories') : label('categories', code);
const levelBadge = (level) => h('span', { class: `badge lvl-incident lvl-${level}`, 'data-testid': 'incident-level' }, t(`incident_level_${level}`));

// The open incidents, for the badge and the banner.
export const openIncidents = () => api('/api/v1/incidents', { query: { limit: 200 } });
// The figures deviating now (an open episode), for the banner.
export const openDeviations = async () => (await api('/api/v1/deviations')).figures.filter((f) => f.state === 'deviating');

// Projects by their names, once the desk knows who signed in.
let projectNames = new Map();
export const knowProjects = (projects) => { projectNames = new Map((projects ?? []).map((p) => [p.code, p.name])); };
export const projectName = (code) => projectNames.get(code) ?? code;
const scope = (f) => f.category ? `${projectName(f.project)} · ${label('categories', f.category)}` : projectName(f.project);
// One decimal: 94.9 % is not shown as 95 % beside a target of 95 %.
const permille = (v) => v == null ? '—' : `${(v / 10).toFixed(1)}%`;

// A line for the open incidents and one for the deviations, above every view of the desk.
export function incidentBanner(el, rows, deviating = []) {
  el.hidden = !rows.length && !deviating.length;
  const lines = [];
  if (rows.length) {
    const what = rows.slice(0, 3).map((i) => `${incidentPlace(i)} ${category(i.category)}`).join(';') + (rows.length > 3 ? '…' : '');
    lines.push(h('div', {}, h('span', {}, t('incident_banner', rows.length, what)), ' ',
      h('a', { href: rows.length === 1 ? `#incidents/${rows[0].number}` : '#incidents', 'data-testid': 'incident-banner-link' }, t('incident_view'))));
  }
  if (deviating.length) {
    const what = deviating.slice(0, 3).map((f) => `${t(`measure_${f.measure}`)} ${scope(f)} ${permille(f.value_permille)}`).join(';') + (deviating.length > 3 ? '…' : '');
    lines.push(h('div', { 'data-testid': 'deviation-banner' }, h('span', {}, t('deviation_banner', what)), ' ',
      h('a', { href: '#deviations', 'data-testid': 'deviation-banner-link' }, t('incident_view'))));
  }
  el.replaceChildren(...lines);
}

export function incidentsView(ctx, arg) {
  if (arg) return incidentView(ctx, arg);
  const all = new URLSearchParams(location.hash.split('?')[1] ?? '').get('state') === 'all';
  const list = h('div', { class: 'stack', 'data-testid': 'incident-list' });
  const chips = h('div', { class: 'chips' }, [['open', 'incidents_open'], ['all', 'incidents_all']].map(([s, key]) =>
    h('a', { href: `#incidents?state=${s}`, class: `chip ${(s === 'all') === all ? 'active' : ''}`, 'data-testid': `incident-filter-${s}` }, t(key))),
    h('a', { href: '#deviations', class: 'chip', 'data-testid': 'incident-filter-deviations' }, t('tab_deviations')));
  ctx.mount([h('h2', {}, t('incidents_title')), muted(t('incidents_intro')), chips, list], async () => {
    const rows = await api('/api/v1/incidents', { query: { state: all ? 'all' : 'open', limit: 200 } });
    list.replaceChildren(...(rows.length ? rows.map((i) => h('a', {
      href: `#incidents/${i.number}`, class: `card incident ${i.state}`, 'data-testid': 'incident-row', 'data-number': i.number,
    }, h('div', { class: 'row-top' }, h('strong', {}, t('incident_n', i.number), ' · ', incidentPlace(i), ' · ', category(i.category)), levelBadge(i.level)),
    h('div', { class: 'muted' }, t('incident_households', i.households, i.orders), ' · ', t('incident_since', fmtTime(i.first_report_at)), ' · ',
      t(`incident_state_${i.state}`), i.suggestions ? [' · ', h('strong', { 'data-testid': 'incident-suggestion-count' }, t('incident_suggestions_n', i.suggestions))] : null,
      i.life_safety ? [' · ', h('strong', { class: 'danger-text' }, t('incident_life_safety'))] : null)))
      : [muted(t('incidents_none'))]));
  });
}

function incidentView(ctx, number) {
  const url = `/api/v1/incidents/${encodeURIComponent(number)}`;
  const box = h('div', { class: 'stack', 'data-testid': 'incident' });
  let chosen = ''; // the technician picked, kept when a live update repaints the incident
  const draft = { body: '', expected: '' }; // the notice being written, kept likewise
  const picked = new Set(); // member orders chosen to split off, kept likewise
  let others = []; // the other open incidents, to merge into
  const paint = (d) => {
    const resolve = d.state === 'open' && h('button', { type: 'button', class: 'primary', 'data-testid': 'incident-resolve', onclick: (e) => {
      if (!confirm(t('incident_resolve_confirm'))) return;
      busy(e.currentTarget, async () => { paint(await api(`${url}/resolve`, { method: 'POST' })); toast(t('incident_resolved')); ctx.refresh?.(); });
    } }, t('incident_resolve'));
    // Members, and later reports suggested to join (the dispatcher decides each).
    const members = d.members.filter((m) => m.standing === 'member');
    const suggested = d.members.filter((m) => m.standing === 'suggested');
    // One technician for the whole incident: every member still waiting is assigned at once.
    const waiting = members.filter((m) => m.status === 'new');
    const who = d.state === 'open' && waiting.length > 0 && ctx.techSelect('incident-assign-select', chosen, d.category === '*' ? null : d.category);
    if (who) {
      who.value = chosen;
      who.addEventListener('change', () => { chosen = who.value; });
    }
    const assign = who && h('div', { class: 'row gap' }, h('span', {}, t('incident_assign', waiting.length)), who,
      h('button', { type: 'button', class: 'primary', 'data-testid': 'incident-assign', onclick: (e) => {
        if (!who.value) return toast(t('choose_tech'), 'error');
        busy(e.currentTarget, async () => {
          // The server takes at most 100 orders a request: a large incident goes in parts.
          const ids = waiting.map((m) => m.order_id);
          const results = [];
          for (let i = 0; i < ids.length; i += 100) {
            results.push(...(await api('/api/v1/orders/bulk-assign', { method: 'POST', body: { ids: ids.slice(i, i + 100), assignee: who.value } })).results);
          }
          const failed = results.filter((r) => !r.ok).length;
          toast(t('bulk_result', results.length - failed, failed), failed ? 'error' : 'ok');
          paint(await api(url));
        });
      } }, t('incident_assign_go')));
    const r = d.response;
    const response = h('section', { class: 'card', 'data-testid': 'incident-response' }, h('h3', {}, t('incident_response'), ' · ', t(`incident_level_${d.level}`)),
      h('p', {}, t('incident_told'), ': ', r.notify.map((role) => label('roles', role)).join('、')),
      h('p', { 'data-testid': 'incident-cover' }, t(r.cover_members ? 'incident_cover_yes' : 'incident_cover_no')),
      h('p', { class: 'muted' }, t(`incident_reach_${r.notice}`)));
    const body = h('textarea', { rows: 3, maxlength: 500, 'data-testid': 'incident-notice-body', placeholder: t('incident_notice_placeholder'),
      oninput: (e) => { draft.body = e.target.value; } });
    body.value = draft.body;
    const expected = h('input', { type: 'datetime-local', 'data-testid': 'incident-notice-expected', oninput: (e) => { draft.expected = e.target.value; } });
    expected.value = draft.expected;
    const form = d.state !== 'merged' && h('form', { class: 'stack', onsubmit: (e) => {
      e.preventDefault();
      const text = body.value.trim();
      if (!text) return toast(t('incident_notice_body'), 'error');
      busy(e.submitter ?? e.currentTarget.querySelector('button'), async () => {
        const sent = await api(`${url}/notices`, { method: 'POST', body: { body: text, expected_at: expected.value ? localInputToMs(expected.value) : null } });
        Object.assign(draft, { body: '', expected: '' });
        toast(t('incident_notice_sent'));
        paint(sent);
      });
    } }, field(t('incident_notice_body'), body), h('div', { class: 'row gap' }, field(t('incident_notice_expected'), expected),
      h('button', { type: 'submit', class: 'primary', 'data-testid': 'incident-notice-send' }, t('incident_notice_send'))));
    const notices = h('section', { class: 'card stack', 'data-testid': 'incident-notices' }, h('h3', {}, t('incident_notices')),
      d.notices.length ? h('ol', { class: 'plain' }, d.notices.slice().reverse().map((n) => h('li', { 'data-testid': 'incident-notice' },
        h('p', {}, n.body), h('span', { class: 'muted' }, fmtTime(n.at), n.expected_at ? ` · ${t('incident_expected', fmtTime(n.expected_at))}` : ''))))
        : h('p', { class: 'muted' }, t('incident_notice_default'), ' ', h('q', { 'data-testid': 'incident-notice-default' }, d.default_notice)),
      form);
    // By hand: into another open incident, or some members split off into a new one.
    const target = h('select', { 'data-testid': 'incident-merge-select' }, h('option', { value: '' }, t('incident_merge_pick')),
      others.map((o) => h('option', { value: o.number }, `${t('incident_n', o.number)} · ${incidentPlace(o)} · ${category(o.category)}`)));
    const merge = d.state === 'open' && others.length > 0 && h('div', { class: 'row gap' }, h('span', {}, t('incident_merge')), target,
      h('button', { type: 'button', 'data-testid': 'incident-merge', onclick: (e) => {
        if (!target.value || !confirm(t('incident_merge_confirm', target.value))) return;
        busy(e.currentTarget, async () => {
          const into = await api(`${url}/merge`, { method: 'POST', body: { into: Number(target.value) } });
          toast(t('incident_merged'));
          ctx.refresh?.();
          location.hash = `#incidents/${into.number}`;
        });
      } }, t('incident_merge_go')));
    const split = d.state === 'open' && members.length > 1 && h('button', { type: 'button', 'data-testid': 'incident-split', disabled: !picked.size || picked.size >= members.length,
      onclick: (e) => busy(e.currentTarget, async () => {
        const made = await api(`${url}/split`, { method: 'POST', body: { orders: [...picked] } });
        picked.clear();
        toast(t('incident_split_done', made.number));
        ctx.refresh?.();
        location.hash = `#incidents/${made.number}`;
      }) }, t('incident_split', picked.size));
    const pick = (m) => d.state === 'open' && h('input', { type: 'checkbox', 'data-testid': 'incident-member-pick', checked: picked.has(m.order_id),
      onchange: (e) => { if (e.target.checked) picked.add(m.order_id); else picked.delete(m.order_id); paint(d); } });
    const answer = (m, join) => h('button', { type: 'button', class: join ? 'primary' : '', 'data-testid': join ? 'incident-suggestion-join' : 'incident-suggestion-dismiss',
      onclick: (e) => busy(e.currentTarget, async () => {
        const after = await api(`${url}/suggestions`, { method: 'POST', body: { order: m.order_id, join } });
        toast(t(join ? 'incident_joined' : 'incident_dismissed'));
        ctx.refresh?.();
        paint(after);
      }) }, t(join ? 'incident_join' : 'incident_dismiss'));
    const suggestions = suggested.length > 0 && h('section', { class: 'card stack', 'data-testid': 'incident-suggestions' },
      h('h3', {}, t('incident_suggestions'), ' · ', t('incident_suggestions_n', suggested.length)), muted(t('incident_suggestions_intro')),
      // A line each, its answers beside it (below it on a phone): no sideways scrolling to answer.
      h('ul', { class: 'plain' }, suggested.map((m) => h('li', { class: 'row suggestion', 'data-testid': 'incident-suggestion' },
        h('a', { href: `#order/${encodeURIComponent(m.order_id)}` }, m.number), h('span', {}, place(m)), statusBadge(m.status),
        h('span', { class: 'muted' }, fmtTime(m.created_at)), d.state === 'open' ? answer(m, true) : '', d.state === 'open' ? answer(m, false) : ''))));
    box.replaceChildren(
      // (replaceChildren is the DOM's: no `false` among its arguments.)
      d.state === 'merged' ? h('p', { class: 'notice' }, h('a', { href: `#incidents/${d.merged_into}` }, t('incident_merged_into', d.merged_into))) : '',
      h('div', { class: 'card stack' },
        h('div', { class: 'row-top' }, h('h2', {}, t('incident_n', d.number), ' · ', incidentPlace(d)), levelBadge(d.level)),
        h('p', {}, category(d.category), ' · ', t('incident_households', d.households, d.orders), ' · ', t('incident_since', fmtTime(d.first_report_at)),
          ' · ', h('span', { 'data-testid': 'incident-state' }, t(`incident_state_${d.state}`)), d.resolved_at ? ` ${fmtTime(d.resolved_at)}` : '',
          d.life_safety ? [' · ', h('strong', { class: 'danger-text' }, t('incident_life_safety'))] : null),
        assign, merge, resolve && h('div', { class: 'buttons' }, resolve)),
      suggestions || '', response, notices,
      h('section', { class: 'card' }, h('div', { class: 'row-top' }, h('h3', {}, t('incident_members')), split),
        table([t('number'), t('location'), t('status'), t('created_at')], members.map((m) => h('tr', { 'data-testid': 'incident-member' },
          h('td', {}, pick(m), ' ', h('a', { href: `#order/${encodeURIComponent(m.order_id)}` }, m.number)), h('td', {}, place(m)),
          h('td', {}, statusBadge(m.status)), h('td', {}, fmtTime(m.created_at)))))));
  };
  ctx.mount([h('p', { class: 'back' }, h('a', { href: '#incidents' }, `← ${t('incidents_title')}`)), box], async () => {
    const [d, open] = await Promise.all([api(url), api('/api/v1/incidents', { query: { limit: 200 } })]);
    others = open.filter((o) => o.number !== d.number && o.project === d.project);
    paint(d);
  });
}

// 服务监测: each figure against its target, the deviating ones first, and the episodes.
export function deviationsView(ctx) {
  const intro = h('p', { class: 'muted' });
  const figures = h('div', { 'data-testid': 'deviation-figures' });
  const episodes = h('div', { 'data-testid': 'deviation-episodes' });
  const order = { deviating: 0, below: 1, ok: 2 };
  ctx.mount([h('p', { class: 'back' }, h('a', { href: '#incidents' }, `← ${t('incidents_title')}`)), h('h2', {}, t('deviations_title')), intro,
    h('section', { class: 'card' }, figures), h('section', { class: 'card' }, h('h3', {}, t('deviation_episodes')), episodes)], async () => {
    const d = await api('/api/v1/deviations');
    intro.textContent = t('deviations_intro', d.standard.window_hours, pct(d.standard.recovery_margin));
    const rows = d.figures.slice().sort((a, b) => order[a.state] - order[b.state] || a.value_permille - b.value_permille);
    figures.replaceChildren(rows.length ? table([t('deviation_measure'), t('deviation_scope'), t('deviation_value'), t('deviation_target'), t('deviation_orders'), t('status')],
      rows.map((f) => h('tr', { 'data-testid': 'deviation-figure', 'data-state': f.state, 'data-measure': f.measure },
        h('td', {}, t(`measure_${f.measure}`)), h('td', {}, scope(f)), h('td', {}, h('strong', {}, permille(f.value_permille))),
        h('td', {}, `≥ ${permille(f.target_permille)}`), h('td', {}, `${f.met}/${f.orders}`),
        h('td', {}, h('span', { class: `badge dev-${f.state}` }, t(`deviation_state_${f.state}`)))))) : muted(t('none')));
    episodes.replaceChildren(d.episodes.length ? table([t('deviation_measure'), t('deviation_scope'), t('deviation_opened'), t('deviation_value'), t('deviation_worst'), t('deviation_closed')],
      d.episodes.map((e) => h('tr', { 'data-testid': 'deviation-episode', 'data-open': e.closed_at == null },
        h('td', {}, t(`measure_${e.measure}`)), h('td', {}, scope(e)), h('td', {}, fmtTime(e.opened_at)), h('td', {}, permille(e.opened_value_permille)),
        h('td', {}, permille(e.worst_value_permille)), h('td', {}, e.closed_at == null ? h('span', { class: 'badge dev-deviating' }, t('deviation_ongoing')) : fmtTime(e.closed_at))))) : muted(t('none')));
  });
}
