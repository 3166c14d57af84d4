// The admin console (#admin/<section>, administrators): accounts and their devices, the SLA book,
// the escalation chain, who closes each grade and the closed-loop days, webhooks, the service
// desk's number. Each section reads its setting and writes it whole (PUT), as the API does; the
// server checks every value and its refusal is shown beside the form.
import {
  addStrings, api, busy, errorText, field, fmtDuration, fmtTime, h, label, lang, muted, section, t, table, toast, vocab,
} from '/assets/common.js';

addStrings({
  tab_admin: ['系统管理', 'Admin'],
  adm_users: ['账号与设备', 'Accounts & devices'], adm_sla: ['时限标准', 'SLA book'], adm_escalation: ['升级链', 'Escalation'],
  adm_closing: ['关闭权限与闭环', 'Closing & closed loop'], adm_webhooks: ['Webhook', 'Webhooks'], adm_service: ['服务台', 'Service desk'],
  adm_estate: ['房屋档案', 'Estate register'], adm_replies: ['回复模板', 'Reply templates'],
  rt_intro: ['智能客服给出建议回复时,先用该类型和类别的模板,其次用该类型(全部类别)的模板,都没有时用系统内置模板。可用占位符:{number} 工单号、{category} 类别、{promise} 承诺响应时间、{arrival} 承诺到场时间、{assignee} 维修师傅、{next} 下一步。',
    'The suggested reply uses the template for the kind and category, else the one for the kind (every category), else the built-in one. Slots: {number} the order\'s number, {category}, {promise} the promised response, {arrival} the promised arrival, {assignee} the technician, {next} the next step.'],
  rt_add: ['添加模板', 'Add a template'], rt_every: ['全部类别', 'Every category'], rt_text: ['模板内容', 'Template'], rt_none: ['暂无自定义模板,使用系统内置模板', 'No template of your own: the built-in ones are used'],
  login_name: ['登录账号', 'Login'], role: ['角色', 'Role'], trades: ['工种', 'Trades'], projects_bound: ['负责项目', 'Projects'],
  units_bound: ['绑定房屋', 'Units'], devices: ['设备', 'Devices'], last_seen: ['最后同步', 'Last sync'],
  active: ['在用', 'Active'], disabled: ['已停用', 'Disabled'], all_states: ['全部状态', 'Any state'], all_roles: ['全部角色', 'All roles'],
  users_total: ['共 {0} 个账号', '{0} accounts'], new_user: ['新建账号', 'New account'], create: ['创建', 'Create'],
  edit: ['编辑', 'Edit'], save: ['保存', 'Save'], cancel: ['取消', 'Cancel'], password: ['密码', 'Password'],
  generate: ['生成', 'Generate'], password_hint: ['至少 10 位,含字母、数字、符号中的两种;创建后请告知本人', 'At least 10 characters of two kinds; tell the person once created'],
  created_user: ['已创建账号 {0}', 'Account {0} created'], every_project: ['不选表示全部项目', 'None chosen: every project'],
  disable: ['停用账号', 'Disable'], enable: ['恢复启用', 'Enable'], disable_confirm: ['停用后该账号不能登录,所有设备停止同步。确定停用?', 'Once disabled, the account cannot sign in and its devices stop syncing. Disable it?'],
  open_orders_warn: ['该维修工还有 {0} 张未完结工单,停用前请先改派', 'This technician holds {0} open orders: reassign them first'],
  see_orders: ['查看这些工单', 'See these orders'], reset_password: ['重置密码', 'Reset password'], new_password: ['新密码', 'New password'],
  revoke_all: ['同时让所有设备重新登录', 'Sign every device out'], password_set: ['密码已重置', 'Password reset'],
  device_name: ['设备名称', 'Device'], signed_in: ['登录时间', 'Signed in'], revoke: ['吊销', 'Revoke'], revoked: ['已吊销', 'Revoked'],
  revoke_confirm: ['吊销后该设备需要重新登录。确定吊销?', 'The device will have to sign in again. Revoke it?'], no_devices: ['暂无设备', 'No device'],
  phone_keep: ['留空则不修改', 'Leave empty to keep'], phone_clear: ['清除电话', 'Remove the phone'],
  add_unit: ['添加房屋', 'Add unit'], prev: ['上一页', 'Previous'], next: ['下一页', 'Next'], own_account: ['(本人)', '(you)'],
  sla_intro: ['按顺序匹配:工单符合的第一条规则生效,最后一条应匹配所有工单。时长按所选日历计算(工作时间日历跳过非工作时间和节假日)。',
    'Policies match in order: the first an order fits applies; the last should fit every order. Durations count on the chosen calendar (working hours skip nights and holidays).'],
  policies: ['时限规则', 'Policies'], calendars: ['日历', 'Calendars'], policy_name: ['名称', 'Name'], any: ['任意', 'Any'],
  response_min: ['响应(分钟)', 'Response (min)'], arrival_min: ['到场(分钟,可空)', 'Arrival (min, optional)'], resolution_min: ['解决(分钟)', 'Resolution (min)'],
  calendar: ['日历', 'Calendar'], add_policy: ['添加规则', 'Add policy'], up: ['上移', 'Up'], down: ['下移', 'Down'],
  add_calendar: ['添加日历', 'Add calendar'], cal_name: ['日历名称', 'Calendar name'], cal_kind: ['类型', 'Kind'],
  cal_24x7: ['全天候', 'Around the clock'], cal_working: ['工作时间', 'Working hours'], open_at: ['上班', 'Opens'], close_at: ['下班', 'Closes'],
  weekdays: ['工作日', 'Weekdays'], holidays: ['节假日(每行一个日期)', 'Holidays (a date per line)'], working_days: ['调休上班日(每行一个日期)', 'Make-up working days (a date per line)'],
  zone: ['时区', 'Zone'], saved_rescan: ['已保存;所有未完结工单的时限将重新计算', 'Saved; every open order\'s deadlines are computed again'],
  esc_intro: ['时限用去 50%、75% 和超时时通知谁。“维修工”指工单的维修工(未派单时为客服)。', 'Who hears when half, three quarters or all of a deadline is used. “Technician” is the order\'s technician (customer service while unassigned).'],
  rcp_assignee: ['维修工', 'Technician'],
  closing_intro: ['每个等级的工单由谁关闭(该角色及以上)。', 'Who closes each grade\'s orders (that role and above).'],
  auto_confirm_days: ['业主未确认自动确认天数(1–30)', 'Days before an unanswered completion is confirmed (1–30)'],
  wh_intro: ['工单事件以签名的 POST 发送到这些地址;密钥只在创建时显示一次。', 'Order events are POSTed, signed, to these addresses; the secret is shown once, when created.'],
  wh_url: ['接收地址(https://…)', 'Receiver URL (https://…)'], wh_add: ['添加', 'Add'], wh_secret: ['签名密钥(请立即保存,不再显示):', 'Signing secret (keep it now; it is not shown again):'],
  wh_private: ['允许发送到内网地址(本地部署的接收方)', 'Allow private and loopback addresses (on-premises receivers)'], wh_none: ['暂无 Webhook', 'No webhook'],
  delete: ['删除', 'Delete'], delete_confirm: ['确定删除?', 'Delete it?'],
  service_phone: ['服务热线', 'Hotline'], service_hours: ['服务时间', 'Hours'], service_intro: ['业主页面的“致电物业”按钮拨打此号码。', 'The owner\'s page calls this number.'],
});

const SECTIONS = ['users', 'sla', 'escalation', 'closing', 'webhooks', 'service', 'replies'];
const OFFICE = ['dispatcher', 'supervisor', 'manager', 'admin'];
const GRADES = ['minor', 'serious', 'severe', 'critical'];
const PAGE = 50;

const checks = (name, list, chosen, testid) => h('div', { class: 'chips', 'data-testid': testid },
  list.map(([code, text]) => h('label', { class: 'inline' },
    h('input', { type: 'checkbox', name: `${name}:${code}`, value: code, checked: chosen.includes(code) }), ' ', text)));
const checked = (form, name) => [...form.querySelectorAll(`input[type=checkbox][name^="${name}:"]`)].filter((x) => x.checked).map((x) => x.value);
const vocabList = (list) => (vocab[list] ?? []).map((v) => [v.code, label(list, v.code)]);
const roleList = () => vocabList('roles');
// A password of 14 characters from letters and digits, with both kinds.
function strongPassword() {
  const chars = 'ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnpqrstuvwxyz23456789';
  const bytes = crypto.getRandomValues(new Uint8Array(14));
  const pick = Array.from(bytes, (b) => chars[b % chars.length]).join('');
  return /\d/.test(pick) && /[A-Za-z]/.test(pick) ? pick : strongPassword();
}
// The refusal of a save, shown under its form (and as a toast).
function sayError(box, e) {
  box.replaceChildren(h('p', { class: 'error', 'data-testid': 'admin-error' }, errorText(e)));
}

// The console: the section's navigation, then the section. `ctx` is the desk's { mount, reload, me }.
export function adminView(ctx, arg) {
  const current = SECTIONS.includes(arg) ? arg : 'users';
  const query = location.hash.split('?')[1] ?? '';
  const nav = h('nav', { class: 'chips card', 'data-testid': 'admin-nav' },
    SECTIONS.map((s) => h('a', { href: `#admin/${s}`, class: `chip ${s === current ? 'active' : ''}`, 'data-testid': `admin-${s}` }, t(`adm_${s}`))),
    h('a', { href: '#estate', class: 'chip', 'data-testid': 'admin-estate' }, t('adm_estate')));
  const build = { users: usersSection, sla: slaSection, escalation: escalationSection, closing: closingSection,
    webhooks: webhooksSection, service: serviceSection, replies: repliesSection }[current];
  build(ctx, nav, new URLSearchParams(query ?? ''));
}

// ---- accounts and devices

function usersSection(ctx, nav, query) {
  const f = { role: query.get('role') ?? '', q: query.get('q') ?? '', state: query.get('state') ?? 'active', page: Number(query.get('page') ?? 0) };
  const go = (change) => {
    const next = { ...f, ...change };
    const qs = new URLSearchParams(Object.entries(next).filter(([k, v]) => v !== '' && !(k === 'page' && !v)));
    location.hash = `#admin/users?${qs}`;
  };
  const bar = h('form', { class: 'card filters', 'data-testid': 'users-filters' },
    h('select', { name: 'role', 'data-testid': 'users-role', value: f.role, onchange: (e) => go({ role: e.target.value, page: 0 }) },
      h('option', { value: '' }, t('all_roles')), roleList().map(([c, x]) => h('option', { value: c }, x))),
    h('select', { name: 'state', 'data-testid': 'users-state', value: f.state, onchange: (e) => go({ state: e.target.value, page: 0 }) },
      h('option', { value: 'active' }, t('active')), h('option', { value: 'disabled' }, t('disabled')), h('option', { value: 'all' }, t('all_states'))),
    h('input', { name: 'q', type: 'search', value: f.q, placeholder: `${t('name')} / ${t('login_name')}`, 'data-testid': 'users-q' }),
    h('button', { type: 'submit' }, t('search')),
    h('button', { type: 'button', class: 'primary', 'data-testid': 'new-user', onclick: () => { createBox.hidden = !createBox.hidden; } }, t('new_user')));
  bar.addEventListener('submit', (e) => { e.preventDefault(); go({ q: bar.elements.q.value.trim(), page: 0 }); });
  const createBox = h('div', { hidden: true }, createForm(ctx));
  const list = h('div', { 'data-testid': 'users-list' });
  const detail = h('div', { 'data-testid': 'user-detail' });
  const chosen = query.get('id');
  ctx.mount([h('h2', {}, t('tab_admin')), nav, bar, createBox, list, detail], async () => {
    const res = await api('/api/v1/users', { raw: true, query: {
      role: f.role || undefined, q: f.q || undefined, limit: PAGE, offset: f.page * PAGE,
      disabled: f.state === 'all' ? undefined : f.state === 'disabled' } });
    const users = await res.json();
    const total = Number(res.headers.get('x-total-count') ?? users.length);
    const bindings = (u) => [u.trades.map((c) => label('categories', c)).join('、'), u.projects.join('、'),
      u.units.map((x) => `${t('building_n', x.building)} ${x.unit}`).join('、')].filter(Boolean).join(' ');
    const rows = users.map((u) => h('tr', { class: `clickable ${u.id === chosen ? 'cursor' : ''}`, 'data-testid': 'user-row', 'data-login': u.login,
      onclick: () => go({ id: u.id }) },
      h('td', {}, u.name, u.id === ctx.me.user_id ? ` ${t('own_account')}` : ''), h('td', {}, u.login), h('td', {}, label('roles', u.role)),
      h('td', {}, u.phone ?? '—'), h('td', {}, bindings(u) || '—'),
      h('td', {}, String(u.active_devices), u.last_seen_at ? ` · ${fmtTime(u.last_seen_at)}` : ''),
      h('td', {}, h('span', { class: `badge ${u.disabled_at ? 'paused' : 'met'}`, 'data-testid': 'user-state' }, t(u.disabled_at ? 'disabled' : 'active')))));
    const pages = Math.max(1, Math.ceil(total / PAGE));
    list.replaceChildren(section(t('users_total', total), 'users-card',
      users.length ? table([t('name'), t('login_name'), t('role'), t('phone'), `${t('trades')} / ${t('projects_bound')} / ${t('units_bound')}`, t('devices'), t('status')], rows)
        : muted(t('none')),
      pages > 1 && h('div', { class: 'pager' },
        h('button', { type: 'button', disabled: f.page <= 0, onclick: () => go({ page: f.page - 1 }) }, t('prev')),
        ` ${f.page + 1} / ${pages} `,
        h('button', { type: 'button', disabled: f.page + 1 >= pages, 'data-testid': 'users-next', onclick: () => go({ page: f.page + 1 }) }, t('next')))));
    if (!chosen) { detail.replaceChildren(); return; }
    const [user, devices] = await Promise.all([api(`/api/v1/users/${encodeURIComponent(chosen)}`),
      api(`/api/v1/users/${encodeURIComponent(chosen)}/devices`)]);
    detail.replaceChildren(userDetail(ctx, user, devices));
  });
}

// The fields one role keeps: trades (technicians), projects (dispatchers), units (owners).
function roleFields(role, u, projects) {
  if (role === 'technician') return field(t('trades'), checks('trade', vocabList('categories'), u.trades ?? [], 'user-trades'));
  if (role === 'dispatcher') {
    return field(t('projects_bound'), h('div', {}, checks('project', projects.map((p) => [p.code, p.name ?? p.code]), u.projects ?? [], 'user-projects'),
      muted(t('every_project'))));
  }
  if (role === 'owner') {
    const list = h('ul', { class: 'plain', 'data-testid': 'user-units' });
    const add = (x) => list.append(h('li', { 'data-unit': JSON.stringify(x) }, `${x.project} ${t('building_n', x.building)} ${x.unit} `,
      h('button', { type: 'button', onclick: (e) => e.currentTarget.closest('li').remove() }, t('remove'))));
    (u.units ?? []).forEach(add);
    const project = h('select', { 'data-testid': 'unit-project' }, projects.map((p) => h('option', { value: p.code }, p.name ?? p.code)));
    const building = h('input', { size: 4, placeholder: t('building'), 'data-testid': 'unit-building' });
    const unit = h('input', { size: 8, placeholder: t('unit'), 'data-testid': 'unit-unit' });
    return field(t('units_bound'), h('div', {}, list, h('div', { class: 'row' }, project, building, unit,
      h('button', { type: 'button', 'data-testid': 'unit-add', onclick: () => {
        if (!building.value.trim() || !unit.value.trim()) return;
        add({ project: project.value, building: building.value.trim(), unit: unit.value.trim() });
        building.value = ''; unit.value = '';
      } }, t('add_unit')))));
  }
  return null;
}
const unitsOf = (form) => [...form.querySelectorAll('[data-testid=user-units] li')].map((li) => JSON.parse(li.dataset.unit));
function bindingsOf(form, role) {
  if (role === 'technician') return { trades: checked(form, 'trade') };
  if (role === 'dispatcher') return { projects: checked(form, 'project') };
  if (role === 'owner') return { units: unitsOf(form) };
  return {};
}

function createForm(ctx) {
  const projects = ctx.me.projects ?? [];
  const box = h('div');
  const password = h('input', { name: 'password', required: true, autocomplete: 'new-password', 'data-testid': 'new-password' });
  const role = h('select', { name: 'role', 'data-testid': 'new-role', onchange: () => extras.replaceChildren(roleFields(role.value, {}, projects) ?? '') },
    roleList().map(([c, x]) => h('option', { value: c }, x)));
  role.value = 'technician';
  const extras = h('div', {}, roleFields('technician', {}, projects));
  const form = h('form', { class: 'card stack', 'data-testid': 'create-user' },
    h('h3', {}, t('new_user')),
    h('div', { class: 'form-grid' },
      field(t('login_name'), h('input', { name: 'login', required: true, autocomplete: 'off', 'data-testid': 'new-login' })),
      field(t('name'), h('input', { name: 'name', required: true, 'data-testid': 'new-name' })),
      field(t('role'), role),
      field(t('phone'), h('input', { name: 'phone', type: 'tel', 'data-testid': 'new-phone' })),
      field(t('password'), h('div', { class: 'row' }, password,
        h('button', { type: 'button', 'data-testid': 'generate-password', onclick: () => { password.value = strongPassword(); } }, t('generate'))))),
    muted(t('password_hint')), extras, box,
    h('div', { class: 'row' }, h('button', { type: 'submit', class: 'primary', 'data-testid': 'create-submit' }, t('create'))));
  form.addEventListener('submit', (e) => {
    e.preventDefault();
    const v = Object.fromEntries(new FormData(form));
    const body = { login: v.login, name: v.name, role: role.value, phone: v.phone || undefined, password: v.password, ...bindingsOf(form, role.value) };
    busy(e.submitter, async () => {
      try {
        const { id } = await api('/api/v1/users', { method: 'POST', body });
        toast(t('created_user', v.login));
        location.hash = `#admin/users?state=all&id=${encodeURIComponent(id)}`;
      } catch (err) { sayError(box, err); throw err; }
    });
  });
  return form;
}

function userDetail(ctx, u, devices) {
  const projects = ctx.me.projects ?? [];
  const self = u.id === ctx.me.user_id;
  const box = h('div');
  const role = h('select', { name: 'edit_role', 'data-testid': 'edit-role', value: u.role, disabled: self,
    onchange: () => extras.replaceChildren(roleFields(role.value, u, projects) ?? '') }, roleList().map(([c, x]) => h('option', { value: c }, x)));
  const extras = h('div', {}, roleFields(u.role, u, projects));
  const form = h('form', { class: 'stack', 'data-testid': 'edit-user' },
    h('div', { class: 'form-grid' },
      field(t('name'), h('input', { name: 'edit_name', value: u.name, required: true, 'data-testid': 'edit-name' })),
      field(t('role'), role),
      field(t('phone'), h('div', {}, h('input', { name: 'edit_phone', type: 'tel', placeholder: u.phone ? `${u.phone} · ${t('phone_keep')}` : '', 'data-testid': 'edit-phone' }),
        u.phone && h('label', { class: 'inline' }, h('input', { type: 'checkbox', name: 'edit_phone_clear' }), ' ', t('phone_clear'))))),
    extras, box,
    h('div', { class: 'row' }, h('button', { type: 'submit', class: 'primary', 'data-testid': 'edit-save' }, t('save'))));
  form.addEventListener('submit', (e) => {
    e.preventDefault();
    const phone = form.elements.edit_phone_clear?.checked ? '' : form.elements.edit_phone.value.trim() || undefined;
    const body = { name: form.elements.edit_name.value, role: self ? undefined : role.value, phone, ...bindingsOf(form, role.value) };
    busy(e.submitter, async () => {
      try { await api(`/api/v1/users/${encodeURIComponent(u.id)}`, { method: 'PATCH', body }); } catch (err) { sayError(box, err); throw err; }
      toast(t('saved'));
      await ctx.reload();
    });
  });
  // Disabling: a technician's open orders are named first (they need another technician).
  const stateBox = h('div', { class: 'stack', 'data-testid': 'user-state-box' },
    u.open_orders > 0 && !u.disabled_at && h('p', { class: 'notice', 'data-testid': 'open-orders-warn' }, t('open_orders_warn', u.open_orders), ' ',
      h('a', { href: `#queue?status=open&assignee=${encodeURIComponent(u.id)}` }, t('see_orders'))),
    !self && h('button', { type: 'button', class: u.disabled_at ? '' : 'danger', 'data-testid': u.disabled_at ? 'enable-user' : 'disable-user',
      onclick: (e) => {
        if (!u.disabled_at && !confirm(t('disable_confirm'))) return;
        busy(e.currentTarget, async () => {
          await api(`/api/v1/users/${encodeURIComponent(u.id)}`, { method: 'PATCH', body: { disabled: !u.disabled_at } });
          await ctx.reload();
        });
      } }, t(u.disabled_at ? 'enable' : 'disable')));
  const pw = h('input', { name: 'reset_password', autocomplete: 'new-password', 'data-testid': 'reset-password-input' });
  const pwBox = h('div');
  const reset = h('form', { class: 'stack', 'data-testid': 'reset-password' },
    h('div', { class: 'row' }, pw, h('button', { type: 'button', onclick: () => { pw.value = strongPassword(); } }, t('generate'))),
    h('label', { class: 'inline' }, h('input', { type: 'checkbox', name: 'reset_revoke', 'data-testid': 'reset-revoke' }), ' ', t('revoke_all')),
    pwBox, h('div', { class: 'row' }, h('button', { type: 'submit', 'data-testid': 'reset-submit' }, t('reset_password'))));
  reset.addEventListener('submit', (e) => {
    e.preventDefault();
    busy(e.submitter, async () => {
      try {
        await api(`/api/v1/users/${encodeURIComponent(u.id)}/password`, { method: 'POST', body: { password: pw.value, revoke_devices: reset.elements.reset_revoke.checked } });
      } catch (err) { sayError(pwBox, err); throw err; }
      pwBox.replaceChildren();
      toast(t('password_set'));
      await ctx.reload();
    });
  });
  const revoke = (d) => (e) => {
    if (!confirm(t('revoke_confirm'))) return;
    busy(e.currentTarget, async () => {
      await api(`/api/v1/devices/${encodeURIComponent(d.id)}/revoke`, { method: 'POST' });
      await ctx.reload();
    });
  };
  const deviceRows = devices.map((d) => h('tr', { 'data-testid': 'device-row' },
    h('td', {}, d.name), h('td', {}, fmtTime(d.created_at)), h('td', {}, fmtTime(d.last_sync_at)),
    h('td', {}, d.revoked_at ? `${t('revoked')} ${fmtTime(d.revoked_at)}`
      : h('button', { type: 'button', class: 'danger', 'data-testid': 'revoke-device', onclick: revoke(d) }, t('revoke')))));
  return h('div', { class: 'detail-grid two' },
    section(`${u.name} · ${u.login}`, 'user-edit-card', form, stateBox),
    h('div', {},
      section(t('devices'), 'user-devices', devices.length ? table([t('device_name'), t('signed_in'), t('last_seen'), ''], deviceRows) : muted(t('no_devices'))),
      section(t('reset_password'), 'user-password', reset)));
}

// ---- settings, each read and written whole

// A settings section: loads `path`, renders `form(value, box)` and PUTs what `collect(form)` gives.
function settingSection(ctx, nav, { title, testid, path, intro, render, collect, savedText }) {
  const holder = h('div', { 'data-testid': testid });
  ctx.mount([h('h2', {}, t('tab_admin')), nav, holder], async () => {
    const value = await api(path);
    const box = h('div');
    const form = h('form', { class: 'card stack' }, h('h3', {}, title), intro && muted(intro), render(value), box,
      h('div', { class: 'row' }, h('button', { type: 'submit', class: 'primary', 'data-testid': 'setting-save' }, t('save'))));
    form.addEventListener('submit', (e) => {
      e.preventDefault();
      busy(e.submitter, async () => {
        let body;
        try {
          body = collect(form);
          await api(path, { method: 'PUT', body });
        } catch (err) { sayError(box, err); throw err; }
        box.replaceChildren();
        toast(savedText ?? t('saved'));
      });
    });
    holder.replaceChildren(form);
  });
}

const WEEKDAY_NAMES = { zh: ['一', '二', '三', '四', '五', '六', '日'], en: ['Mon', 'Tue', 'Wed', 'Thu', 'Fri', 'Sat', 'Sun'] };
function calendarRow(name, c) {
  const working = c.kind === 'working_hours';
  const day = (i) => (lang === 'en' ? WEEKDAY_NAMES.en : WEEKDAY_NAMES.zh)[i - 1];
  const kind = h('select', { 'data-k': 'kind', value: c.kind }, h('option', { value: '24x7' }, t('cal_24x7')), h('option', { value: 'working_hours' }, t('cal_working')));
  const hours = h('div', { class: 'form-grid stretch', 'data-k': 'hours', hidden: !working },
    field(t('zone'), h('input', { 'data-k': 'zone', value: c.zone ?? 'Asia/Shanghai' })),
    field(t('open_at'), h('input', { 'data-k': 'open', type: 'time', value: c.open ?? '08:30' })),
    field(t('close_at'), h('input', { 'data-k': 'close', type: 'time', value: c.close ?? '17:30' })),
    field(t('weekdays'), h('div', { class: 'chips' }, [1, 2, 3, 4, 5, 6, 7].map((i) => h('label', { class: 'inline' },
      h('input', { type: 'checkbox', 'data-day': i, checked: (c.weekdays ?? [1, 2, 3, 4, 5]).includes(i) }), ' ', day(i))))),
    field(t('holidays'), h('textarea', { 'data-k': 'holidays', rows: 4, value: (c.holidays ?? []).join('\n') })),
    field(t('working_days'), h('textarea', { 'data-k': 'working_days', rows: 4, value: (c.working_days ?? []).join('\n') })));
  kind.addEventListener('change', () => { hours.hidden = kind.value !== 'working_hours'; });
  return h('div', { class: 'card stack stretch', 'data-testid': 'sla-calendar' },
    h('div', { class: 'row' }, field(t('cal_name'), h('input', { 'data-k': 'name', value: name, required: true })), field(t('cal_kind'), kind),
      h('button', { type: 'button', onclick: (e) => e.currentTarget.closest('[data-testid=sla-calendar]').remove() }, t('remove'))),
    hours);
}
const lines = (text) => text.split('\n').map((x) => x.trim()).filter(Boolean);
function readCalendar(el) {
  const k = (key) => el.querySelector(`[data-k=${key}]`).value;
  if (k('kind') === '24x7') return [k('name').trim(), { kind: '24x7' }];
  return [k('name').trim(), { kind: 'working_hours', zone: k('zone').trim(), open: k('open'), close: k('close'),
    weekdays: [...el.querySelectorAll('[data-day]')].filter((x) => x.checked).map((x) => Number(x.dataset.day)),
    holidays: lines(k('holidays')), working_days: lines(k('working_days')) }];
}

function policyRow(p, calendars) {
  const target = (key, tg, optional) => h('div', { class: 'row target' },
    h('input', { type: 'number', min: 1, 'data-k': `${key}_minutes`, value: tg?.minutes ?? '', required: !optional, size: 6,
      oninput: (e) => { e.target.nextElementSibling.textContent = e.target.value ? fmtDuration(Number(e.target.value) * 60000) : ''; } }),
    h('small', { class: 'muted' }, tg?.minutes ? fmtDuration(tg.minutes * 60000) : ''),
    h('select', { 'data-k': `${key}_calendar`, value: tg?.calendar ?? calendars[0] }, calendars.map((c) => h('option', { value: c }, c))));
  const multi = (list, key, chosen) => h('div', { class: 'chips', 'data-k': key },
    vocabList(list).map(([code, text]) => h('label', { class: 'inline' }, h('input', { type: 'checkbox', value: code, checked: chosen.includes(code) }), ' ', text)));
  const el = h('div', { class: 'card stack stretch', 'data-testid': 'sla-policy' },
    h('div', { class: 'row' }, field(t('policy_name'), h('input', { 'data-k': 'name', value: p.name, required: true, 'data-testid': 'policy-name' })),
      h('button', { type: 'button', onclick: () => el.previousElementSibling?.before(el) }, t('up')),
      h('button', { type: 'button', onclick: () => el.nextElementSibling?.after(el) }, t('down')),
      h('button', { type: 'button', onclick: () => el.remove() }, t('remove'))),
    h('div', { class: 'form-grid stretch' },
      field(`${t('kind')} (${t('any')})`, multi('kinds', 'kinds', p.kinds ?? [])),
      field(`${t('category')} (${t('any')})`, multi('categories', 'categories', p.categories ?? [])),
      field(`${t('grade')} (${t('any')})`, multi('grades', 'grades', p.grades ?? []))),
    h('div', { class: 'form-grid stretch' },
      field(t('response_min'), target('response', p.response)),
      field(t('arrival_min'), target('arrival', p.arrival, true)),
      field(t('resolution_min'), target('resolution', p.resolution))));
  return el;
}
function readPolicy(el) {
  const k = (key) => el.querySelector(`[data-k=${key}]`).value;
  const multi = (key) => [...el.querySelectorAll(`[data-k=${key}] input`)].filter((x) => x.checked).map((x) => x.value);
  const target = (key) => ({ minutes: Number(k(`${key}_minutes`)), calendar: k(`${key}_calendar`) });
  return { name: k('name').trim(), kinds: multi('kinds'), categories: multi('categories'), grades: multi('grades'),
    response: target('response'), arrival: k('arrival_minutes') ? target('arrival') : null, resolution: target('resolution') };
}

function slaSection(ctx, nav) {
  settingSection(ctx, nav, {
    title: t('adm_sla'), testid: 'admin-sla', path: '/api/v1/settings/sla', intro: t('sla_intro'), savedText: t('saved_rescan'),
    render: (book) => {
      const names = Object.keys(book.calendars);
      const cals = h('div', { class: 'stack stretch', 'data-testid': 'sla-calendars' }, Object.entries(book.calendars).map(([n, c]) => calendarRow(n, c)));
      const pols = h('div', { class: 'stack stretch', 'data-testid': 'sla-policies' }, book.policies.map((p) => policyRow(p, names)));
      return h('div', { class: 'stack stretch' },
        h('h4', {}, t('policies')), pols,
        h('div', { class: 'row' }, h('button', { type: 'button', 'data-testid': 'add-policy', onclick: () => pols.append(policyRow({ name: '' },
          [...cals.querySelectorAll('[data-testid=sla-calendar]')].map((el) => readCalendar(el)[0]))) }, t('add_policy'))),
        h('h4', {}, t('calendars')), cals,
        h('div', { class: 'row' }, h('button', { type: 'button', onclick: () => cals.append(calendarRow('', { kind: '24x7' })) }, t('add_calendar'))));
    },
    collect: (form) => ({
      calendars: Object.fromEntries([...form.querySelectorAll('[data-testid=sla-calendar]')].map(readCalendar)),
      policies: [...form.querySelectorAll('[data-testid=sla-policy]')].map(readPolicy),
    }),
  });
}

function escalationSection(ctx, nav) {
  const recipients = () => [['assignee', t('rcp_assignee')], ...OFFICE.map((r) => [r, label('roles', r)])];
  const LEVELS = ['warn_50', 'warn_75', 'breach'];
  settingSection(ctx, nav, {
    title: t('adm_escalation'), testid: 'admin-escalation', path: '/api/v1/settings/escalation', intro: t('esc_intro'),
    render: (chain) => table([t('level'), ...GRADES.map((g) => label('grades', g))], LEVELS.map((lvl) => h('tr', {},
      h('th', {}, t(`level_${lvl}`)),
      GRADES.map((g) => h('td', {}, checks(`${lvl}.${g}`, recipients(), chain[lvl][g], `esc-${lvl}-${g}`)))))),
    collect: (form) => Object.fromEntries(LEVELS.map((lvl) => [lvl, Object.fromEntries(GRADES.map((g) => [g, checked(form, `${lvl}.${g}`)]))])),
  });
}

function closingSection(ctx, nav) {
  const holder = h('div', { 'data-testid': 'admin-closing' });
  ctx.mount([h('h2', {}, t('tab_admin')), nav, holder], async () => {
    const [authority, loop] = await Promise.all([api('/api/v1/settings/closing-authority'), api('/api/v1/settings/closed-loop')]);
    const box = h('div');
    const form = h('form', { class: 'card stack', 'data-testid': 'closing-form' }, h('h3', {}, t('adm_closing')), muted(t('closing_intro')),
      h('div', { class: 'form-grid' }, GRADES.map((g) => field(label('grades', g),
        h('select', { name: `close_${g}`, value: authority[g], 'data-testid': `close-${g}` }, OFFICE.map((r) => h('option', { value: r }, label('roles', r))))))),
      field(t('auto_confirm_days'), h('input', { name: 'auto_confirm_days', type: 'number', min: 1, max: 30, value: loop.auto_confirm_days, 'data-testid': 'auto-confirm-days' })),
      box, h('div', { class: 'row' }, h('button', { type: 'submit', class: 'primary', 'data-testid': 'setting-save' }, t('save'))));
    form.addEventListener('submit', (e) => {
      e.preventDefault();
      busy(e.submitter, async () => {
        try {
          await api('/api/v1/settings/closing-authority', { method: 'PUT', body: Object.fromEntries(GRADES.map((g) => [g, form.elements[`close_${g}`].value])) });
          await api('/api/v1/settings/closed-loop', { method: 'PUT', body: { auto_confirm_days: Number(form.elements.auto_confirm_days.value) } });
        } catch (err) { sayError(box, err); throw err; }
        box.replaceChildren();
        toast(t('saved'));
      });
    });
    holder.replaceChildren(form);
  });
}

function webhooksSection(ctx, nav) {
  const holder = h('div', { 'data-testid': 'admin-webhooks' });
  const secretBox = h('div', { 'data-testid': 'webhook-secret' });
  ctx.mount([h('h2', {}, t('tab_admin')), nav, secretBox, holder], async () => {
    const [hooks, destinations] = await Promise.all([api('/api/v1/settings/webhooks'), api('/api/v1/settings/webhook-destinations')]);
    const box = h('div');
    const add = h('form', { class: 'row', 'data-testid': 'webhook-add' },
      h('input', { name: 'url', type: 'url', required: true, placeholder: t('wh_url'), size: 40, 'data-testid': 'webhook-url' }),
      h('button', { type: 'submit', class: 'primary' }, t('wh_add')));
    add.addEventListener('submit', (e) => {
      e.preventDefault();
      busy(e.submitter, async () => {
        let made;
        try { made = await api('/api/v1/settings/webhooks', { method: 'POST', body: { url: add.elements.url.value.trim() } }); } catch (err) { sayError(box, err); throw err; }
        secretBox.replaceChildren(h('p', { class: 'notice card' }, t('wh_secret'), ' ', h('code', { 'data-testid': 'webhook-secret-value' }, made.secret)));
        await ctx.reload();
      });
    });
    const remove = (w) => (e) => {
      if (!confirm(t('delete_confirm'))) return;
      busy(e.currentTarget, async () => { await api(`/api/v1/settings/webhooks/${encodeURIComponent(w.id)}`, { method: 'DELETE' }); await ctx.reload(); });
    };
    const priv = h('input', { type: 'checkbox', checked: destinations.allow_private, 'data-testid': 'webhook-private',
      onchange: (e) => busy(null, async () => {
        await api('/api/v1/settings/webhook-destinations', { method: 'PUT', body: { allow_private: e.target.checked } });
        toast(t('saved'));
      }) });
    holder.replaceChildren(section(t('adm_webhooks'), 'webhooks-card', muted(t('wh_intro')),
      hooks.length ? table([t('wh_url'), t('created_at'), ''], hooks.map((w) => h('tr', { 'data-testid': 'webhook-row' },
        h('td', {}, w.url), h('td', {}, fmtTime(w.created_at_ms)),
        h('td', {}, h('button', { type: 'button', class: 'danger', onclick: remove(w) }, t('delete'))))))
        : muted(t('wh_none')),
      add, box, h('label', { class: 'inline' }, priv, ' ', t('wh_private'))));
  });
}

function repliesSection(ctx, nav) {
  const row = (tpl) => h('div', { class: 'card stack', 'data-testid': 'rt-row' },
    h('div', { class: 'form-grid' },
      field(t('kind'), h('select', { 'data-k': 'kind', 'data-testid': 'rt-kind', value: tpl.kind }, vocabList('kinds').map(([code, text]) => h('option', { value: code }, text)))),
      field(t('category'), h('select', { 'data-k': 'category', 'data-testid': 'rt-category', value: tpl.category ?? '' },
        h('option', { value: '' }, t('rt_every')), vocabList('categories').map(([code, text]) => h('option', { value: code }, text))))),
    field(t('rt_text'), h('textarea', { 'data-k': 'text', 'data-testid': 'rt-text', rows: 3, maxlength: 500 }, tpl.text ?? '')),
    h('div', { class: 'row' }, h('button', { type: 'button', class: 'danger', onclick: (e) => e.currentTarget.closest('[data-testid=rt-row]').remove() }, t('delete'))));
  settingSection(ctx, nav, {
    title: t('adm_replies'), testid: 'admin-replies', path: '/api/v1/settings/reply-templates', intro: t('rt_intro'),
    render: (s) => {
      const list = h('div', { class: 'stack', 'data-testid': 'rt-list' }, s.templates.length ? s.templates.map(row) : muted(t('rt_none')));
      return h('div', { class: 'stack' }, list, h('div', { class: 'row' }, h('button', { type: 'button', 'data-testid': 'rt-add', onclick: () => {
        list.querySelector('p.muted')?.remove();
        list.append(row({ kind: 'repair', category: null, text: '' }));
      } }, t('rt_add'))));
    },
    collect: (form) => ({ templates: [...form.querySelectorAll('[data-testid=rt-row]')].map((r) => ({
      kind: r.querySelector('[data-k=kind]').value, category: r.querySelector('[data-k=category]').value || undefined,
      text: r.querySelector('[data-k=text]').value.trim() })) }),
  });
}

function serviceSection(ctx, nav) {
  settingSection(ctx, nav, {
    title: t('adm_service'), testid: 'admin-service', path: '/api/v1/settings/service-desk', intro: t('service_intro'),
    render: (s) => h('div', { class: 'form-grid' },
      field(t('service_phone'), h('input', { name: 'sd_phone', type: 'tel', value: s.phone ?? '', 'data-testid': 'service-phone' })),
      field(t('service_hours'), h('input', { name: 'sd_hours', value: s.hours ?? '', 'data-testid': 'service-hours' }))),
    collect: (form) => ({ phone: form.elements.sd_phone.value.trim() || null, hours: form.elements.sd_hours.value.trim() || null }),
  });
}
