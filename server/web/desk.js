// The dispatcher desk (served at /): queue, registration, order detail, notifications, return
// visits, the estate register, dashboards and KPIs. Hash routes: #queue, #register, #order/<id>,
// #notifications, #visits, #estate, #dashboard, #kpis, #admin/<section> (admin.js). Live events reload the current view's data in place.
import {
  api, busy, dayStart, debounce, errorBox, field, fmtDuration, fmtTime, h, label, lang, loadVocab, localInputToMs,
  loginView, newKey, options, pct, place, rerender, session, shanghaiDate, showError, slaBadge, slaLevel, startLive,
  startPage, startSlaTicker, statusBadge, t, toast, viewer, vocab, ApiError, windowInputs, readWindow, fmtWindow,
  muted, section, table,
} from '/assets/common.js';
import { adminView } from '/assets/admin.js';
import { chatsView, waitingCount } from '/assets/chats.js';
import { attachmentsCard, photoPicker } from '/assets/photos.js';
import { assetsView, maintenanceFigures } from '/assets/equipment.js';
import { deviationsView, incidentBanner, incidentsView, knowProjects, openDeviations, openIncidents, projectName } from '/assets/incidents.js';

session.use('loopwork.desk');
const STAFF = ['dispatcher', 'supervisor', 'manager', 'admin'];
const DAY = 86_400_000;
const WEEKDAYS = { zh: ['周一', '周二', '周三', '周四', '周五', '周六', '周日'], en: ['Mon', 'Tue', 'Wed', 'Thu', 'Fri', 'Sat', 'Sun'] };
const $ = (id) => document.getElementById(id);
const view = $('view');
// me: GET /me; techs: GET /technicians; filters and checked: the queue's; numbers: order id -> number
// as last seen; load: the current view's data loader; poll: its timer; range: dashboard/KPI period.
const st = { me: null, techs: [], filters: { status: 'open' }, checked: new Set(), numbers: new Map(), paintBulk: null, poll: 0, range: null };
const { mount, reload } = viewer(view);

// ---- small builders

// A value for a cell: nodes and text as they are, nothing as a dash, an object by its name.
const show = (v) => (v == null || v === '' ? '—' : v instanceof Node || typeof v !== 'object' ? v : v.name ?? v.code ?? JSON.stringify(v));
const row = (cells, attrs) => h('tr', attrs, cells.map((c) => h('td', {}, show(c))));
const gradeBadge = (code) => h('span', { class: `badge g-${code}` }, label('grades', code));
const orderLink = (id, text) => h('a', { href: `#order/${encodeURIComponent(id)}`, class: 'number' }, text ?? String(id).slice(0, 8));
const techLabel = (x) => t('tech_option', x.name, x.open_orders ?? 0, t(x.on_duty ? 'on_duty' : 'off_duty'))
  + (x.trades?.length ? ` · ${x.trades.map((c) => label('categories', c)).join('/')}` : '');
// The technician picker; given the order's category, those of that trade come first.
function techSelect(name, selected, category) {
  const option = (x) => h('option', { value: x.user_id }, techLabel(x));
  const fit = category ? st.techs.filter((x) => x.trades?.includes(category)) : [];
  const rest = st.techs.filter((x) => !fit.includes(x));
  return h('select', { name, 'data-testid': name, value: selected ?? '' }, h('option', { value: '' }, t('choose_tech')),
    fit.length ? [h('optgroup', { label: t('trade_fits', label('categories', category)), 'data-testid': 'trade-fits' }, fit.map(option)),
      h('optgroup', { label: t('trade_others') }, rest.map(option))] : rest.map(option));
}
// A note as the page's language has it: the server's own notes come in English too.
const noteText = (n) => (lang === 'en' && n.text_en) || n.text;
const reasonText = (e) => (typeof e === 'string' ? e : (lang === 'zh' && e?.message_zh) || e?.message || e?.code || '');

// ---- chrome, login, routing

function chrome() {
  const me = st.me;
  $('tabs').hidden = !me;
  $('logout').hidden = !me;
  $('user-name').textContent = me ? `${me.name} · ${label('roles', me.role)}` : '';
  $('lang-switch').textContent = t('lang_other');
  document.querySelector('[data-testid=tab-kpis]').hidden = me?.role === 'dispatcher';
  document.querySelector('[data-testid=tab-admin]').hidden = me?.role !== 'admin';
}

function showLogin() {
  // Another person may sign in: nothing of the last one's registration stays.
  Object.assign(st, { me: null, load: null, draft: null, draftTouched: null, deviating: null, deviationsAt: null });
  clearInterval(st.poll);
  chrome();
  $('incident-banner').hidden = true;
  Object.assign(view.dataset, { view: 'login', state: 'ready' });
  loginView(view, { accept: (role) => STAFF.includes(role), done: boot, hint: t('use_h5') });
}

async function boot() {
  if (!session.get()) return showLogin();
  try {
    [st.me] = await Promise.all([api('/api/v1/me'), loadVocab()]);
    knowProjects(st.me.projects);
    await loadTechs();
  } catch (e) {
    if (e.status !== 401) { view.replaceChildren(errorBox(e)); view.dataset.state = 'error'; } // 401 shows the login
    return;
  }
  chrome();
  startLive(onFeed, () => { refreshUnread(); refreshIncidents(); if (['notifications', 'incidents', 'deviations'].includes(view.dataset.view)) reload(); },
    () => { refreshChats(); if (view.dataset.view === 'chats') reload(); });
  refreshUnread();
  refreshChats();
  refreshIncidents();
  // Alerts fired by another server process reach this desk within a minute.
  setInterval(() => { if (st.me) { refreshUnread(); refreshChats(); refreshIncidents(); } }, 60_000);
  route();
}

const loadTechs = async () => { st.techs = await api('/api/v1/technicians'); };

// Owners' conversations waiting for a person: the 在线咨询 tab's badge.
async function refreshChats() {
  const n = await waitingCount().catch(() => null);
  if (n != null) Object.assign($('chats-count'), { textContent: n >= 100 ? '99+' : n, hidden: !n });
}

// Open incidents: the 事件 tab's badge and the banner above every view.
async function refreshIncidents() {
  // The figures are aggregates and the watch that opens episodes runs once a minute: read at
  // most once a minute, not on every live notice.
  const stale = !st.deviationsAt || Date.now() - st.deviationsAt >= 60_000;
  const [rows, deviating] = await Promise.all([openIncidents().catch(() => null),
    stale ? openDeviations().catch(() => st.deviating ?? []) : st.deviating]);
  if (stale) Object.assign(st, { deviating, deviationsAt: Date.now() });
  if (rows == null) return;
  Object.assign($('incidents-count'), { textContent: rows.length, hidden: !rows.length });
  incidentBanner($('incident-banner'), st.me ? rows : [], st.me ? deviating : []);
}

async function onFeed() {
  if (!st.me) return;
  await loadTechs().catch(() => {});
  reload();
  refreshUnread();
}

// The unread count: the tab's badge and the browser tab's title; a sound (if the user turned it
// on) when a breach, or any alert on a 严重/重大 order, arrives after the page loaded.
const TITLE = document.title;
const URGENT = new Set(['severe', 'critical']);
async function refreshUnread() {
  let res;
  try { res = await api('/api/v1/notifications', { raw: true }); } catch { return null; }
  const items = await res.json();
  const n = Number(res.headers.get('x-unread-count') ?? items.filter((x) => x.read_at_ms == null).length);
  Object.assign($('unread-count'), { textContent: n, hidden: !n });
  document.title = n ? `(${n}) ${TITLE}` : TITLE;
  const fresh = items.filter((x) => x.read_at_ms == null && st.seenAlerts && !st.seenAlerts.has(x.id));
  st.seenAlerts = new Set(items.map((x) => x.id));
  if (fresh.some((x) => x.level === 'breach' || x.level === 'urgent' || URGENT.has(x.grade)) && localStorage.getItem('loopwork.sound') === 'on') beep();
  return items;
}

// Two short tones through WebAudio (no file to load); browsers allow it once the page was used.
function beep() {
  try {
    const audio = new AudioContext();
    for (const [at, freq] of [[0, 880], [0.25, 660]]) {
      const osc = audio.createOscillator();
      const gain = audio.createGain();
      osc.frequency.value = freq;
      gain.gain.value = 0.15;
      osc.connect(gain).connect(audio.destination);
      osc.start(audio.currentTime + at);
      osc.stop(audio.currentTime + at + 0.18);
    }
    document.documentElement.dataset.beeps = String(Number(document.documentElement.dataset.beeps ?? 0) + 1);
  } catch { /* no audio device: the badge and title still tell */ }
}

const ROUTES = { queue: queueView, register: registerView, order: orderView, notifications: notificationsView,
  visits: visitsView, estate: estateView, dashboard: dashboardView, kpis: kpisView, print: printView,
  admin: (arg) => adminView({ mount, reload, me: st.me }, arg),
  incidents: (arg) => incidentsView({ mount, reload, me: st.me, refresh: refreshIncidents, techSelect }, arg),
  deviations: () => deviationsView({ mount }),
  assets: (arg) => assetsView({ mount, reload, me: st.me }, arg),
  chats: (arg) => chatsView({ mount, reload, me: st.me, register: (draft) => {
    // The registration form, filled from a conversation; the order is kept with it.
    const { conversation, ...fields } = draft;
    st.draft = fields;
    st.draftConversation = conversation;
    location.hash = '#register';
  } }, arg) };

function route() {
  if (!st.me) return;
  const [name, arg] = location.hash.slice(1).split('?')[0].split('/');
  const current = ROUTES[name] ? name : 'queue';
  const tab = current === 'order' || current === 'print' ? 'queue' : current;
  for (const a of $('tabs').querySelectorAll('a')) a.classList.toggle('active', a.hash === `#${tab}`);
  clearInterval(st.poll);
  view.dataset.view = current;
  ROUTES[current](arg && decodeURIComponent(arg));
}


// ---- queue

// Columns the queue sorts by when their header is clicked: the sort each asks for (a second
// click on 登记时间 reverses it).
const SORTS = { number: 'number', grade: 'priority', created_at: 'created', deadline: 'deadline' };

function ordersTable(rows, { rowId = 'queue-row', select = false, sort, onSort } = {}) {
  const check = (id, on) => { if (on) st.checked.add(id); else st.checked.delete(id); st.paintBulk?.(); };
  const all = select && h('input', { type: 'checkbox', 'data-testid': 'row-check-all', 'aria-label': t('all'),
    checked: rows.length > 0 && rows.every((r) => st.checked.has(r.id)),
    onchange: (e) => {
      for (const box of e.target.closest('table').querySelectorAll('[data-testid=row-check]')) box.checked = e.target.checked;
      rows.forEach((r) => check(r.id, e.target.checked));
    } });
  const head = (key) => {
    if (!onSort || !SORTS[key]) return t(key);
    const active = sort === SORTS[key] || (key === 'created_at' && sort === 'created_asc') || (key === 'grade' && !sort);
    const next = key === 'created_at' && sort === 'created' ? 'created_asc' : SORTS[key];
    const arrow = active ? (sort === 'created_asc' ? ' ↑' : ' ↓') : '';
    return h('button', { type: 'button', class: `sort ${active ? 'active' : ''}`, 'data-testid': `sort-${key}`, onclick: () => onSort(next) }, t(key), arrow);
  };
  const heads = [all, head('number'), t('kind'), t('category'), head('grade'), t('status'), t('location'), t('description'), t('assignee'), head('created_at'), head('deadline')];
  return table(heads.filter((x) => x !== false), rows.map((r) => h('tr', {
    'data-testid': rowId, 'data-id': r.id, 'data-sla': slaLevel(r.sla), class: 'clickable',
    onclick: (e) => { if (!e.target.closest('a, input, button, label')) location.hash = `#order/${encodeURIComponent(r.id)}`; },
  },
  select && h('td', {}, h('input', { type: 'checkbox', 'data-testid': 'row-check', 'aria-label': r.number, checked: st.checked.has(r.id), onchange: (e) => check(r.id, e.target.checked) })),
  [h('span', {}, orderLink(r.id, r.number), ' ', suggestedBadge(r)), label('kinds', r.kind), label('categories', r.category), gradeBadge(r.grade), statusBadge(r.status),
    place(r), r.description && h('span', { class: 'desc', title: r.description }, r.description), r.assignee_name ?? r.assignee,
    fmtTime(r.created_at), clockCell(r)].map((c) => h('td', {}, show(c))))));
}

// The assistant's reading of an order no person has answered yet: 智能建议, or 紧急 when it
// judged the report urgent; its labels on hover.
function suggestedBadge(r) {
  const x = r.suggestion;
  if (!x || x.confirmed || ['closed', 'cancelled'].includes(r.status)) return null;
  const title = `${t('assistant')}: ${label('kinds', x.kind)} · ${label('categories', x.category)} · ${label('grades', x.grade)}`;
  return h('span', { class: `badge ${x.urgent ? 'late' : 'public'}`, 'data-testid': 'row-suggested', 'data-urgent': String(x.urgent), title },
    x.urgent ? t('urgent_suggested') : t('suggested'));
}

// The 时限 column: the deadline being run; for an order on hold, the hold and its reason (its
// clock is paused); for one awaiting the owner, the time left before it is confirmed for them.
function clockCell(r) {
  if (r.status === 'on_hold') {
    return h('span', { class: 'badge paused', 'data-testid': 'row-hold' }, t('paused_for', r.hold_reason ? label('hold_reasons', r.hold_reason) : t('paused')));
  }
  if (r.status === 'awaiting_confirmation' && r.auto_confirm_at != null) {
    const left = r.auto_confirm_at - Date.now();
    return h('span', { class: 'badge', 'data-testid': 'row-auto-confirm', title: fmtTime(r.auto_confirm_at) },
      left > 0 ? t('auto_confirm_in', fmtDuration(left)) : t('auto_confirm_due'));
  }
  return slaBadge(r.sla);
}

// The queue's filters live in the URL (#queue?status=open&grade=severe&page=2), so that a view
// can be bookmarked, shared and opened in another tab; `page` and `size` are the desk's paging.
const PAGE_SIZES = [50, 100, 200];
const queueQuery = () => new URLSearchParams(location.hash.split('?')[1] ?? '');
function setQueueQuery(f) {
  const q = new URLSearchParams(Object.entries(f).filter(([, v]) => v != null && v !== ''));
  history.replaceState(null, '', `#queue${q.size ? `?${q}` : ''}`);
}

function queueView() {
  // The URL's filters when it has any; else the last ones of this session.
  const fromUrl = Object.fromEntries(queueQuery());
  if (location.hash.includes('?')) st.filters = fromUrl;
  const f = st.filters;
  const apply = () => { setQueueQuery(f); if (view.dataset.view === 'queue') reload(); };
  const set = (key) => (e) => {
    const v = e.target.type === 'checkbox' ? (e.target.checked ? 'true' : '') : e.target.value.trim();
    if (v) f[key] = v; else delete f[key];
    delete f.page;
    apply(); // a debounced search may fire after the user left: apply checks the view
  };
  const pick = (key, list) => field(t(key), h('select', { 'data-testid': `filter-${key}`, value: f[key] ?? '', onchange: set(key) }, options(list, t('all'))));
  const filters = h('div', { class: 'filters card' },
    field(t('status'), h('select', { 'data-testid': 'filter-status', value: f.status ?? '', onchange: set('status') },
      h('option', { value: '' }, t('all')), h('option', { value: 'open' }, t('open_orders')),
      h('option', { value: 'not_cancelled' }, t('not_cancelled')), options('statuses'))),
    pick('kind', 'kinds'), pick('grade', 'grades'), pick('category', 'categories'),
    field(t('building'), h('input', { 'data-testid': 'filter-building', value: f.building ?? '', size: 6, onchange: set('building') })),
    field(t('technician'), h('select', { 'data-testid': 'filter-assignee', value: f.assignee ?? '', onchange: set('assignee') },
      h('option', { value: '' }, t('all')), st.techs.map((x) => h('option', { value: x.user_id }, x.name)))),
    h('label', { class: 'check' }, h('input', { type: 'checkbox', 'data-testid': 'filter-overdue', checked: !!f.overdue, onchange: set('overdue') }), t('overdue_only')),
    field(t('search'), h('input', { type: 'search', 'data-testid': 'queue-search', value: f.q ?? '', placeholder: t('search_hint'), oninput: debounce(set('q'), 300) }), 'grow'),
    viewsBar(f, (query) => { st.filters = Object.fromEntries(new URLSearchParams(query)); setQueueQuery(st.filters); queueView(); }));

  const count = h('strong');
  const who = techSelect('bulk-assign-select');
  const failures = h('ul', { class: 'failures', 'data-testid': 'bulk-failures' });
  const submit = h('button', { type: 'button', class: 'primary', 'data-testid': 'bulk-assign-submit' }, t('bulk_assign'));
  const bulk = h('div', { class: 'bulkbar card', 'data-testid': 'bulk-bar', hidden: true }, count, who, submit, failures);
  st.paintBulk = () => { bulk.hidden = !st.checked.size; count.textContent = t('selected_n', st.checked.size); };
  submit.addEventListener('click', () => {
    if (!who.value) return toast(t('choose_tech'), 'error');
    busy(submit, async () => {
      const { results } = await api('/api/v1/orders/bulk-assign', { method: 'POST', body: { ids: [...st.checked], assignee: who.value } });
      const failed = results.filter((r) => !r.ok);
      toast(t('bulk_result', results.length - failed.length, failed.length), failed.length ? 'error' : 'ok');
      failures.replaceChildren(...failed.map((r) => h('li', {}, `${st.numbers.get(r.id) ?? r.id}: ${reasonText(r.error)}`)));
      st.checked = new Set(failed.map((r) => r.id));
      await reload();
    });
  });

  const size = PAGE_SIZES.includes(Number(f.size)) ? Number(f.size) : PAGE_SIZES[0];
  const pageNo = Math.max(1, Number.parseInt(f.page, 10) || 1);
  const go = (n) => { f.page = String(n); if (n === 1) delete f.page; apply(); };
  const pager = h('div', { class: 'pager', 'data-testid': 'pager' });
  const list = h('div', { 'data-testid': 'queue' });
  const onSort = (sort) => { f.sort = sort; if (sort === 'priority') delete f.sort; delete f.page; apply(); };
  const paint = ({ rows, total }) => {
    const visible = new Set(rows.map((r) => r.id));
    st.checked = new Set([...st.checked].filter((id) => visible.has(id)));
    st.numbers = new Map(rows.map((r) => [r.id, r.number]));
    list.replaceChildren(rows.length ? ordersTable(rows, { select: true, sort: f.sort, onSort }) : muted(t('no_orders')));
    const pages = Math.max(1, Math.ceil(total / size));
    pager.replaceChildren(
      h('span', { 'data-testid': 'queue-total' }, t('queue_total', total)),
      h('button', { type: 'button', 'data-testid': 'page-prev', disabled: pageNo <= 1, onclick: () => go(pageNo - 1) }, t('page_prev')),
      h('span', { 'data-testid': 'page-of' }, t('page_of', Math.min(pageNo, pages), pages)),
      h('button', { type: 'button', 'data-testid': 'page-next', disabled: pageNo >= pages, onclick: () => go(pageNo + 1) }, t('page_next')),
      h('select', { 'data-testid': 'page-size', 'aria-label': t('page_size'), value: String(size),
        onchange: (e) => { f.size = e.target.value; delete f.page; apply(); } }, PAGE_SIZES.map((n) => h('option', { value: String(n) }, t('per_page', n)))),
      h('span', { class: 'grow' }),
      h('button', { type: 'button', 'data-testid': 'export-xlsx', onclick: (e) => download(e.currentTarget, 'xlsx', f) }, t('export_xlsx')),
      h('button', { type: 'button', 'data-testid': 'export-csv', onclick: (e) => download(e.currentTarget, 'csv', f) }, t('export_csv')));
    st.paintBulk();
    st.cursor = Math.min(st.cursor ?? -1, rows.length - 1);
    paintCursor();
  };
  // The last rows loaded for these filters stay on screen until new ones arrive (a failed
  // load, e.g. no network, then leaves them there).
  const key = JSON.stringify(f);
  if (st.lastQueue?.key === key) paint(st.lastQueue.data);
  // Above the queue, whatever its filters: reports the assistant judged urgent that no person
  // has answered yet, oldest first.
  const urgent = h('div', { class: 'card urgent-strip', 'data-testid': 'urgent-strip', hidden: true });
  const paintUrgent = ({ rows, total }) => {
    urgent.replaceChildren(h('strong', {}, t('urgent_strip', total)), ' ',
      ...rows.map((r) => h('span', { class: 'gap', 'data-testid': 'urgent-strip-order' }, orderLink(r.id, r.number), ' ', place(r), ' ',
        r.suggestion ? h('span', { class: 'badge late' }, label('categories', r.suggestion.category)) : null)));
    urgent.hidden = !rows.length;
  };
  mount([urgent, filters, bulk, pager, list], async () => {
    const { page, size: _size, ...query } = f;
    api('/api/v1/orders', { query: { suggested: 'urgent', status: 'open', sort: 'created_asc', limit: 20 }, raw: true })
      .then(async (res) => paintUrgent({ rows: await res.json(), total: Number(res.headers.get('x-total-count') ?? 0) }), () => {});
    const res = await api('/api/v1/orders', { query: { ...query, limit: size, offset: (pageNo - 1) * size }, raw: true });
    const data = { rows: await res.json(), total: Number(res.headers.get('x-total-count') ?? 0) };
    st.lastQueue = { key: JSON.stringify(f), data };
    paint(data);
  });
}

// Saved views: the user's named filters, chosen from a list; the current filters saved under a name.
function viewsBar(f, choose) {
  const select = h('select', { 'data-testid': 'views-select', 'aria-label': t('views') }, h('option', { value: '' }, t('views')));
  const remove = h('button', { type: 'button', 'data-testid': 'view-delete', disabled: true }, t('view_delete'));
  let views = [];
  const load = async () => {
    views = await api('/api/v1/me/views').catch(() => []);
    select.replaceChildren(h('option', { value: '' }, t('views')), ...views.map((v) => h('option', { value: v.id }, v.name)));
  };
  select.addEventListener('change', () => {
    const v = views.find((x) => x.id === select.value);
    remove.disabled = !v;
    if (v) choose(v.query);
  });
  remove.addEventListener('click', () => busy(remove, async () => {
    await api(`/api/v1/me/views/${encodeURIComponent(select.value)}`, { method: 'DELETE' });
    remove.disabled = true;
    await load();
  }));
  const save = h('button', { type: 'button', 'data-testid': 'view-save', onclick: (e) => {
    const name = prompt(t('view_name'));
    if (!name?.trim()) return;
    const { page, ...rest } = f;
    const query = new URLSearchParams(Object.entries(rest).filter(([k, v]) => v && k !== 'size')).toString();
    busy(e.currentTarget, async () => { await api('/api/v1/me/views', { method: 'POST', body: { name: name.trim(), query } }); toast(t('view_saved', name.trim())); await load(); });
  } }, t('view_save'));
  load();
  return h('div', { class: 'row views' }, select, save, remove);
}

// Downloads an export of the filtered list (the server names the file by period and project).
function download(button, format, f) {
  const { page, size, ...query } = f;
  busy(button, () => saveFile(api(`/api/v1/orders/export/${format}`, { query, raw: true }), `orders.${format}`));
}

// Saves a response as a file under the name its Content-Disposition gives (RFC 6266 filename*).
async function saveFile(response, fallback) {
  const res = await response;
  const disposition = res.headers.get('content-disposition') ?? '';
  const name = decodeURIComponent(/filename\*=UTF-8''([^;]+)/.exec(disposition)?.[1] ?? fallback);
  const url = URL.createObjectURL(await res.blob());
  const a = h('a', { href: url, download: name, hidden: true });
  document.body.append(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(url), 10_000);
}

// Keyboard: / search, j and k move through the queue's rows, Enter opens one, r reloads,
// n registers; never while typing in a field.
function paintCursor() {
  const rows = [...document.querySelectorAll('[data-testid=queue-row]')];
  rows.forEach((row, i) => row.classList.toggle('cursor', i === st.cursor));
  rows[st.cursor]?.scrollIntoView({ block: 'nearest' });
}
document.addEventListener('keydown', (e) => {
  if (!st.me || e.ctrlKey || e.metaKey || e.altKey || e.target.closest?.('input, textarea, select, [contenteditable]')) return;
  const inQueue = view.dataset.view === 'queue';
  const rows = inQueue ? document.querySelectorAll('[data-testid=queue-row]') : [];
  if (e.key === '/' && inQueue) { e.preventDefault(); document.querySelector('[data-testid=queue-search]')?.focus(); }
  else if ((e.key === 'j' || e.key === 'k') && rows.length) {
    st.cursor = Math.max(0, Math.min(rows.length - 1, (st.cursor ?? -1) + (e.key === 'j' ? 1 : -1)));
    paintCursor();
  } else if (e.key === 'Enter' && inQueue && rows[st.cursor]) location.hash = `#order/${encodeURIComponent(rows[st.cursor].dataset.id)}`;
  else if (e.key === 'r') reload();
  else if (e.key === 'n') location.hash = '#register';
});

// ---- registration

// A phone call's form: the caller's number first, looked up in the estate register (来电弹屏);
// the unit picked from the register's buildings and units; the category chosen by the dispatcher
// or, on saving with none chosen, taken from the assistant's suggestion (never while typing).
// What was typed survives switching tabs (st.draft) until the order is registered.
function registerView() {
  const result = h('div', { 'data-testid': 'register-result' });
  const input = (name, attrs) => h('input', { name, 'data-testid': `reg-${name.replace('_', '-')}`, ...attrs });
  // Only the server registers through a maintenance plan (channel `plan`).
  const pick = (name, list, value, blank) => field(t(name), h('select', { name, 'data-testid': `reg-${name}`, value, required: true }, options(list, blank, ['plan'])));
  const caller = h('div', { class: 'caller wide', 'data-testid': 'caller-card', hidden: true });
  // Open orders of the unit and category, shown before saving (the same list the server returns after).
  const dupes = h('div', { class: 'wide caller', 'data-testid': 'reg-duplicates', hidden: true });
  // The assistant's reading of the description (POST /api/v1/triage), as the dispatcher types.
  const suggest = h('div', { class: 'wide caller suggest', 'data-testid': 'reg-suggest', 'aria-live': 'polite', hidden: true });
  const submit = h('button', { type: 'submit', class: 'primary', 'data-testid': 'reg-submit' }, t('register_submit'));
  // The caller's photos (sent by WeChat, say), uploaded once the order is registered.
  const photos = photoPicker({ testid: 'reg-photos' });
  const buildingList = h('datalist', { id: 'reg-buildings' });
  const unitList = h('datalist', { id: 'reg-units' });
  const form = h('form', { class: 'card form-grid', 'data-testid': 'register-form' },
    field(t('caller_phone'), input('caller_phone', { type: 'tel', autocomplete: 'off', inputmode: 'tel' })),
    field(t('caller_name'), input('caller_name', { autocomplete: 'off' })),
    caller,
    field(t('project'), h('select', { name: 'project', 'data-testid': 'reg-project', required: true },
      (st.me.projects ?? []).map((p) => h('option', { value: p.code }, p.name ?? p.code)))),
    field(t('building'), input('building', { list: 'reg-buildings', autocomplete: 'off' })),
    field(t('unit'), input('unit', { list: 'reg-units', autocomplete: 'off' })),
    field(t('area'), input('area', { placeholder: t('area_hint') })),
    pick('kind', 'kinds', 'repair'), pick('category', 'categories', '', t('choose')), pick('grade', 'grades', 'minor'), pick('channel', 'channels', 'hotline'),
    field(t('occurred_at'), input('occurred', { type: 'datetime-local' })),
    field(`${t('appointment')}`, windowInputs('appt'), 'wide'),
    field(t('description'), h('textarea', { name: 'description', 'data-testid': 'reg-description', rows: 3, required: true }), 'wide'),
    photos.node,
    suggest,
    dupes,
    field(t('assign_to'), techSelect('assignee')),
    h('div', { class: 'wide' }, submit),
    buildingList, unitList);
  const el = (name) => form.elements.namedItem(name);
  const values = () => Object.fromEntries([...new FormData(form)].map(([k, x]) => [k, x.trim()]));
  const fill = (v) => { for (const [k, x] of Object.entries(v)) if (el(k)) el(k).value = x; };

  // The register's buildings of the project and units of the building, offered as the user types.
  const loadBuildings = async () => {
    const rows = await api('/api/v1/estate/buildings', { query: { project: el('project').value } }).catch(() => []);
    buildingList.replaceChildren(...rows.map((b) => h('option', { value: b.building }, t('building_n', b.building))));
  };
  const loadUnits = async () => {
    const building = el('building').value.trim();
    const rows = building ? await api('/api/v1/estate/units', { query: { project: el('project').value, building } }).catch(() => []) : [];
    unitList.replaceChildren(...rows.map((u) => h('option', { value: u.unit })));
  };
  const checkDuplicates = debounce(async () => {
    const v = values();
    if (!v.unit || !v.category) { dupes.hidden = true; return; }
    const rows = await api('/api/v1/orders', { query: { project: v.project, building: v.building, unit: v.unit, category: v.category, status: 'open', limit: 5 } }).catch(() => []);
    dupes.replaceChildren(h('strong', {}, t('possible_duplicates_before', rows.length)), ' ',
      ...rows.map((o) => h('span', { class: 'gap' }, orderLink(o.id, o.number), ' ', statusBadge(o.status), ' ', o.description ?? '')));
    dupes.hidden = !rows.length;
  }, 300);
  for (const name of ['unit', 'building', 'category', 'project']) el(name).addEventListener('change', checkDuplicates);

  // The assistant: kind, category and grade read from the description, shown beside the form
  // and never put in a field the dispatcher chose. 采用建议 takes all three; saving with no
  // category takes the suggestion's (and its kind and grade where the dispatcher left them),
  // unless the assistant is unsure: then the dispatcher must choose.
  let suggestion = null;
  // What the dispatcher chose, kept with the draft across tabs.
  st.draftTouched ??= new Set();
  const touched = st.draftTouched;
  for (const name of ['kind', 'category', 'grade']) el(name).addEventListener('change', () => touched.add(name));
  const takeSuggestion = (all) => {
    if (!suggestion) return;
    for (const name of ['kind', 'category', 'grade']) {
      if (all || !touched.has(name) || (name === 'category' && !el(name).value)) el(name).value = suggestion[name];
    }
  };
  const showSuggestion = (a, text) => {
    suggestion = a && { ...a, text };
    el('category').required = !a || a.abstain;
    if (!a) { suggest.hidden = true; return; }
    const reply = a.reply.replaceAll('{number}', '—');
    suggest.replaceChildren(h('div', {},
      h('strong', {}, t('assistant')), ' ',
      h('span', { 'data-testid': 'suggest-labels' }, `${label('kinds', a.kind)} · ${label('categories', a.category)} · ${label('grades', a.grade)}`), ' ',
      a.urgent && h('span', { class: 'badge late', 'data-testid': 'suggest-urgent' }, t('urgent')), ' ',
      a.rule && h('span', { class: 'badge paused', 'data-testid': 'suggest-rule' }, lang === 'en' ? a.rule.en : a.rule.zh), ' ',
      h('span', { class: 'muted' }, t('assistant_confidence', Math.round(a.confidence * 100))), ' ',
      a.abstain && h('span', { class: 'muted', 'data-testid': 'suggest-unsure' }, t('assistant_unsure')), ' ',
      h('button', { type: 'button', 'data-testid': 'suggest-apply', onclick: () => { takeSuggestion(true); save(); checkDuplicates(); toast(t('assistant_applied')); } }, t('assistant_apply')),
      a.duplicates.length > 0 && h('div', { 'data-testid': 'suggest-duplicates' }, t('assistant_same_incident'), ' ',
        a.duplicates.map((d) => h('span', { class: 'gap' }, orderLink(d.order.id, d.order.number), ' ', statusBadge(d.order.status), ' ', d.order.description ?? ''))),
      h('details', {}, h('summary', {}, t('assistant_reply')),
        h('p', { 'data-testid': 'suggest-reply' }, reply),
        h('button', { type: 'button', onclick: () => navigator.clipboard?.writeText(reply).then(() => toast(t('copied')), () => {}) }, t('copy')))));
    suggest.hidden = false;
  };
  const askAssistant = debounce(async () => {
    const v = values();
    if ([...v.description].length < 4) { showSuggestion(null); return; }
    let answer;
    try {
      answer = await api('/api/v1/triage', { method: 'POST', body: { text: v.description, project: v.project || undefined, building: v.building || undefined, unit: v.unit || undefined } });
    } catch { return; }
    if (values().description === v.description) showSuggestion(answer, v.description);
  }, 400);
  el('description').addEventListener('input', askAssistant);
  el('assignee').addEventListener('change', () => { submit.textContent = t(el('assignee').value ? 'register_assign' : 'register_submit'); });
  el('project').addEventListener('change', () => { loadBuildings(); loadUnits(); });
  el('building').addEventListener('change', loadUnits);

  // The caller pop-up: who has this number, where, and what is still open there.
  let asked = '';
  const lookUp = debounce(async () => {
    const phone = el('caller_phone').value.trim();
    if (phone.replace(/\D/g, '').length < 7 || phone === asked) { if (!phone) caller.hidden = true; return; }
    asked = phone;
    let found;
    try { found = await api('/api/v1/estate/callers', { method: 'POST', body: { phone } }); } catch { caller.hidden = true; return; }
    if (el('caller_phone').value.trim() !== phone) return; // typed on meanwhile
    const use = (r) => () => {
      fill({ project: r.project, building: r.building, unit: r.unit });
      if (!el('caller_name').value.trim()) el('caller_name').value = r.name;
      loadUnits();
      save();
    };
    caller.replaceChildren(h('strong', {}, t('caller_lookup'), ' '),
      found.residents.length ? h('ul', { class: 'plain' }, found.residents.map((r) => h('li', { 'data-testid': 'caller-resident' },
        `${r.name} · ${r.relation_label} · ${t('building_n', r.building)} ${r.unit} `,
        h('button', { type: 'button', 'data-testid': 'caller-use', onclick: use(r) }, t('caller_use')))))
        : h('span', { class: 'muted' }, t('caller_none')),
      found.open_orders.length > 0 && h('div', { 'data-testid': 'caller-open' }, t('caller_open'), ' ',
        found.open_orders.map((o) => h('span', { class: 'gap' }, orderLink(o.id, o.number), ' ', statusBadge(o.status), ' ', label('categories', o.category)))));
    caller.hidden = false;
    if (found.residents.length === 1 && !el('unit').value.trim()) use(found.residents[0])();
  }, 400);
  el('caller_phone').addEventListener('input', lookUp);

  const save = () => { st.draft = values(); };
  form.addEventListener('input', save);
  form.addEventListener('change', save);
  // One key per registration: a click again after a lost answer returns the first order.
  let key = newKey();
  form.addEventListener('submit', (e) => {
    e.preventDefault();
    busy(e.submitter, async () => {
      // Only a suggestion for the description as it is now, and only when no category is chosen.
      const current = suggestion && !suggestion.abstain && suggestion.text === values().description;
      if (current && !values().category) takeSuggestion(false);
      const v = values();
      if (!v.category) { el('category').required = true; el('category').reportValidity(); return; }
      const body = { kind: v.kind, category: v.category, grade: v.grade, channel: v.channel, project: v.project,
        building: v.building, unit: v.unit, area: v.area || undefined, description: v.description,
        occurred_at: v.occurred ? localInputToMs(v.occurred) : undefined,
        caller_name: v.caller_name || undefined, caller_phone: v.caller_phone || undefined, assignee: v.assignee || undefined,
        appointment: readWindow(form, 'appt') ?? undefined, conversation: st.draftConversation ?? undefined };
      const r = await api('/api/v1/orders', { method: 'POST', body, idempotencyKey: key });
      // The order is registered; its photos follow in the background (the form is free at
      // once; a failure says which to add again on the order).
      if (photos.count()) photos.send(r.id, r.number);
      st.draftConversation = null;
      fromChat.hidden = true;
      key = newKey();
      form.reset();
      submit.textContent = t('register_submit');
      dupes.hidden = true;
      showSuggestion(null);
      touched.clear();
      st.draft = null;
      caller.hidden = true;
      asked = '';
      result.replaceChildren(registered(r));
    });
  });
  // Filled from an owner's conversation: the order will be kept with it (× detaches it).
  const fromChat = h('p', { class: 'notice', 'data-testid': 'reg-from-chat', hidden: !st.draftConversation }, t('chat_from'), ' ',
    h('button', { type: 'button', class: 'link', 'aria-label': t('cancel'), onclick: () => { st.draftConversation = null; fromChat.hidden = true; } }, '×'));
  mount([h('h2', {}, t('register_title')), result, fromChat, form], null);
  if (st.draft) { fill(st.draft); lookUp(); checkDuplicates(); askAssistant(); }
  loadBuildings();
  loadUnits();
}

// The number at once, then any likely duplicates, each of which this order can be linked to.
function registered(r) {
  const link = (dup) => (e) => {
    const button = e.currentTarget;
    busy(button, async () => {
      await api(`/api/v1/orders/${encodeURIComponent(r.id)}/link`, { method: 'POST', body: { to: dup.id } });
      toast(t('linked', dup.number));
      for (const b of button.closest('tbody').querySelectorAll('button')) b.replaceWith(b === button ? t('linked', dup.number) : '—');
    });
  };
  const dups = r.duplicates ?? [];
  return h('div', { class: 'card success' },
    h('p', {}, t('registered'), ' ',
      h('strong', { class: 'number big', 'data-testid': 'registered-number', 'data-id': r.id }, r.number), ' ',
      h('a', { href: `#order/${encodeURIComponent(r.id)}`, 'data-testid': 'registered-open' }, t('open_order'))),
    dups.length > 0 && [h('p', {}, t('possible_duplicates')),
      table([t('number'), t('status'), t('category'), t('location'), t('created_at'), ''], dups.map((dup) => h('tr', { 'data-testid': 'duplicate-row', 'data-id': dup.id },
        [orderLink(dup.id, dup.number), statusBadge(dup.status), label('categories', dup.category), place(dup), fmtTime(dup.created_at)].map((c) => h('td', {}, c)),
        h('td', {}, h('button', { type: 'button', 'data-testid': 'link-duplicate', 'data-id': dup.id, onclick: link(dup) }, t('link_duplicate'))))))]);
}

// ---- order detail

function orderView(id) {
  const url = `/api/v1/orders/${encodeURIComponent(id)}`;
  const box = h('div', { class: 'order', 'data-testid': 'order-detail', 'data-id': id });
  let d = null;
  let pending = null; // the action whose extra inputs are open
  const paint = () => rerender(box, () => orderDetail(d, ctx));
  const ctx = {
    pending: () => pending,
    show(next) { d = next; paint(); },
    ask(code) { pending = code; paint(); },
    // POSTs to the order, shows the detail it answers and clears the submitted form.
    send: (path, body, button, method = 'POST') => busy(button, async () => {
      const res = await api(url + path, { method, body });
      d = res?.id ? res : await api(url);
      button.form?.reset();
      pending = null;
      paint();
      toast(t('saved'));
    }),
  };
  // The contact card's sources: the reporter's account (masked), the unit in the estate register
  // (residents, past orders); numbers revealed stay shown while the order is open here.
  ctx.revealed = new Map();
  ctx.reveal = (key, path, button) => busy(button, async () => {
    const r = await api(path, { method: 'POST' });
    ctx.revealed.set(key, r.phone);
    if (r.name) ctx.revealed.set(`${key}:name`, r.name);
    paint();
    toast(t('revealed_logged'));
  });
  mount([h('p', { class: 'back' }, h('a', { href: '#queue' }, `← ${t('back_to_queue')}`)), box], async () => {
    d = await api(url);
    const unit = d.unit && { project: d.project, building: d.building ?? '', unit: d.unit };
    [ctx.contact, ctx.unit] = await Promise.all([
      api(`${url}/contact`).catch(() => null),
      unit ? api('/api/v1/estate/unit', { query: unit }).catch(() => null) : null]);
    paint();
  });
}

// Who to call about the order: the caller registered with it, the reporter's account, the unit's
// residents from the estate register, each masked with an audited 查看号码 that turns the number
// into a `tel:` link; beside them the unit's other orders.
function contactCard(d, ctx) {
  const phone = (key, masked, path) => {
    const full = ctx.revealed.get(key);
    if (full) return h('a', { href: `tel:${full}`, 'data-testid': 'contact-phone-full' }, full);
    if (!masked) return '—';
    return h('span', {}, h('span', { 'data-testid': 'contact-phone' }, masked), ' ',
      h('button', { type: 'button', 'data-testid': 'contact-reveal', onclick: (e) => ctx.reveal(key, path, e.currentTarget) }, t('reveal_phone')));
  };
  const id = encodeURIComponent(d.id);
  const rows = [];
  if (d.caller) rows.push([t('caller'), ctx.revealed.get('caller:name') ?? d.caller.name, phone('caller', d.caller.phone, `/api/v1/orders/${id}/caller/reveal`)]);
  if (ctx.contact && ctx.contact.phone && ctx.contact.phone !== d.caller?.phone) {
    rows.push([t('reporter'), ctx.revealed.get('reporter:name') ?? ctx.contact.name, phone('reporter', ctx.contact.phone, `/api/v1/orders/${id}/contact/reveal`)]);
  }
  for (const r of ctx.unit?.residents ?? []) {
    rows.push([r.relation_label, r.name, phone(`resident:${r.id}`, r.phone, `/api/v1/estate/residents/${encodeURIComponent(r.id)}/reveal`)]);
  }
  const history = (ctx.unit?.orders ?? []).filter((o) => o.id !== d.id);
  if (!rows.length && !history.length) return null;
  return section(t('contact_card'), 'contact-card',
    rows.length ? table([t('relation'), t('name'), t('phone')], rows.map((cells) => h('tr', { 'data-testid': 'contact-row' }, cells.map((c) => h('td', {}, show(c))))))
      : muted(t('no_residents')),
    history.length > 0 && [h('h4', {}, t('unit_history', place(d))),
      table([t('number'), t('category'), t('status'), t('created_at')], history.map((o) => h('tr', { 'data-testid': 'unit-history-row' },
        [orderLink(o.id, o.number), label('categories', o.category), statusBadge(o.status), fmtTime(o.created_at)].map((c) => h('td', {}, c)))))]);
}

function orderDetail(d, ctx) {
  return [
    h('div', { class: 'detail-head' },
      h('h2', { class: 'number', 'data-testid': 'detail-number' }, d.number),
      statusBadge(d.status, { 'data-testid': 'detail-status' }),
      h('span', { class: 'badge' }, label('kinds', d.kind)), gradeBadge(d.grade), slaBadge(d.sla),
      h('a', { href: `#print/${encodeURIComponent(d.id)}`, class: 'button', 'data-testid': 'print-link' }, t('print_order')),
      // The owner's conversation with the assistant the order came from (咨询记录).
      d.conversation && h('a', { href: `#chats/${encodeURIComponent(d.conversation)}`, class: 'button', 'data-testid': 'detail-conversation' }, t('chat_transcript')),
      // The incident (事件单) the order belongs to.
      d.incident && h('a', { href: `#incidents/${d.incident.number}`, class: 'button', 'data-testid': 'detail-incident' },
        `${t('incident_n', d.incident.number)} · ${d.incident.place_zh}`)),
    h('div', { class: 'detail-grid' },
      h('div', { class: 'col' }, factsCard(d), deadlinesCard(d),
        attachmentsCard(d, { who: (a) => person(d, a.who, a.author), onChanged: ctx.show }),
        notesCard(d, ctx), workCard(d), timelineCard(d), rejectedCard(d)),
      h('div', { class: 'col side' }, suggestionCard(d, ctx), actionsCard(d, ctx), contactCard(d, ctx), assignCard(d, ctx), appointmentCard(d, ctx), classifyCard(d, ctx), ratingCard(d), slaEventsCard(d))),
  ];
}

// The assistant's reading of the order, until a person takes it (its category and grade) or
// sets it aside.
function suggestionCard(d, ctx) {
  const x = d.suggestion;
  if (!x || x.confirmed || ['closed', 'cancelled'].includes(d.status)) return null;
  return section(t('assistant'), 'detail-suggestion', h('div', { class: 'stack' },
    h('p', {}, h('span', { 'data-testid': 'detail-suggestion-labels' }, `${label('kinds', x.kind)} · ${label('categories', x.category)} · ${label('grades', x.grade)}`), ' ',
      x.urgent && h('span', { class: 'badge late' }, t('urgent')), ' ',
      h('span', { class: 'muted' }, t('assistant_confidence', Math.round(x.confidence * 100))), ' ',
      x.abstain && h('span', { class: 'muted' }, t('assistant_unsure'))),
    h('div', { class: 'row' },
      h('button', { type: 'button', class: 'primary', 'data-testid': 'suggestion-accept', onclick: (e) => ctx.send('/suggestion', { accept: true }, e.currentTarget) }, t('assistant_apply')),
      h('button', { type: 'button', 'data-testid': 'suggestion-dismiss', onclick: (e) => ctx.send('/suggestion', { accept: false }, e.currentTarget) }, t('assistant_dismiss')))));
}

// 预约时间 moved or cleared (改约): office staff may while the order is open.
function appointmentCard(d, ctx) {
  if (['closed', 'cancelled'].includes(d.status)) return null;
  const form = h('form', { class: 'stack', 'data-testid': 'appointment-form' }, windowInputs('appt_edit', d.appointment),
    h('div', { class: 'row' }, h('button', { type: 'submit', class: 'primary', 'data-testid': 'appointment-save' }, t('appt_set')),
      d.appointment && h('button', { type: 'button', 'data-testid': 'appointment-clear',
        onclick: (e) => ctx.send('/appointment', undefined, e.currentTarget, 'DELETE') }, t('appt_clear'))));
  form.addEventListener('submit', (e) => {
    e.preventDefault();
    const span = readWindow(form, 'appt_edit');
    if (!span) return toast(t('appt_hint'), 'error');
    ctx.send('/appointment', span, e.submitter, 'PUT');
  });
  return section(t('appointment'), 'appointment-card', form);
}

function factsCard(d) {
  const caller = d.caller && [d.caller.name, d.caller.phone].filter(Boolean).join(' ');
  const project = st.me.projects?.find((p) => p.code === d.project)?.name ?? d.project;
  const facts = [['category', label('categories', d.category)], ['channel', label('channels', d.channel)], ['project', project],
    ['location', place(d)], d.reporter_name && ['reporter', d.reporter_name], ['caller', caller], ['assignee', d.assignee_name ?? d.assignee],
    ['appointment', d.appointment && fmtWindow(d.appointment)],
    ['occurred_at', fmtTime(d.occurred_at)], ['created_at', fmtTime(d.created_at)], ['reopen_count', d.reopen_count],
    ['return_visit', d.return_visit_required == null ? null : d.return_visit_required
      ? [t('yes'), ...(d.return_visit_reasons ?? []).map((r) => label('return_visit_reasons', r))].join(lang === 'en' ? ', ' : '、')
      : t('no')]];
  return section(t('facts'), 'detail-facts',
    h('p', { class: 'description', 'data-testid': 'detail-description' }, d.description ?? ''),
    h('dl', { class: 'facts' }, facts.filter(Boolean).flatMap(([k, v]) => [h('dt', {}, t(k)), h('dd', { 'data-testid': `detail-${k.replace(/_/g, '-')}` }, show(v))])));
}

// Actions whose extra input is asked inline (the label of their text box), and those whose text is required.
// Actions that ask for text first; closing asks for a confirmation (it cannot be undone).
const ASKS = { confirm: 'comment', reject: 'reject_reason', hold: 'note_optional', return_visit: 'visit_result', cancel: 'cancel_reason', close: 'close_confirm' };

function actionsCard(d, ctx) {
  const codes = (d.actions ?? []).filter((c) => c !== 'assign');
  if (!codes.length && !d.closing_needs) return null;
  const p = codes.includes(ctx.pending()) ? ctx.pending() : null;
  const buttons = h('div', { class: 'buttons' }, codes.map((code) => h('button', {
    type: 'button', class: code === 'cancel' ? 'danger' : code === p ? 'primary' : null, 'data-testid': `action-${code}`,
    onclick: (e) => (ASKS[code] ? ctx.ask(code) : ctx.send('/actions', { action: code }, e.currentTarget)),
  }, code === 'confirm' ? t('confirm_by_phone') : label('actions', code))));
  // Closing withheld by the organization's closing authority: say who may, instead of nothing.
  const needs = d.closing_needs && h('p', { class: 'muted', 'data-testid': 'closing-needs' }, t('closing_needs', label('roles', d.closing_needs)));
  if (!p) return section(t('actions'), 'detail-actions', buttons, needs);
  const form = h('form', { class: 'stack', 'data-testid': 'action-form' },
    p === 'confirm' && field(t('owner_rating'), h('select', { name: 'act_rating', 'data-testid': 'action-rating', value: '5' },
      [5, 4, 3, 2, 1].map((n) => h('option', { value: n }, `${'★'.repeat(n)} ${t('stars_n', n)}`)))),
    p === 'hold' && field(t('hold_reason'), h('select', { name: 'act_hold', 'data-testid': 'action-hold-reason' }, options('hold_reasons'))),
    field(t(ASKS[p]), h('textarea', { name: 'act_text', 'data-testid': 'action-text', rows: 2, required: !!vocab.actions?.find((a) => a.code === p)?.requires_text })),
    h('div', { class: 'buttons' },
      h('button', { type: 'submit', class: p === 'cancel' ? 'danger' : 'primary', 'data-testid': 'action-submit' }, p === 'confirm' ? t('confirm_by_phone') : label('actions', p)),
      h('button', { type: 'button', 'data-testid': 'action-dismiss', onclick: () => ctx.ask(null) }, t('dismiss'))));
  form.addEventListener('submit', (e) => {
    e.preventDefault();
    const v = Object.fromEntries(new FormData(form));
    ctx.send('/actions', { action: p, text: v.act_text.trim() || undefined, rating: v.act_rating && Number(v.act_rating), hold_reason: v.act_hold }, e.submitter);
  });
  return section(t('actions'), 'detail-actions', buttons, needs, form);
}

function assignCard(d, ctx) {
  if (!d.actions?.includes('assign')) return null;
  const select = techSelect('assign-select', d.assignee, d.category);
  const submit = (e) => (select.value
    ? ctx.send('/actions', { action: 'assign', assignee: select.value }, e.currentTarget)
    : toast(t('choose_tech'), 'error'));
  return section(t('assign'), 'detail-assign', h('div', { class: 'row' }, select,
    h('button', { type: 'button', class: 'primary', 'data-testid': 'assign-submit', onclick: submit }, t('assign_submit'))));
}

function classifyCard(d, ctx) {
  if (['closed', 'cancelled'].includes(d.status)) return null;
  const form = h('form', { class: 'stack', 'data-testid': 'classify-form' },
    field(t('grade'), h('select', { name: 'cls_grade', 'data-testid': 'classify-grade', value: d.grade }, options('grades'))),
    field(t('category'), h('select', { name: 'cls_category', 'data-testid': 'classify-category', value: d.category }, options('categories'))),
    field(t('classify_reason'), h('input', { name: 'cls_reason', 'data-testid': 'classify-reason' })),
    h('div', {}, h('button', { type: 'submit', 'data-testid': 'classify-submit' }, t('classify_submit'))));
  form.addEventListener('submit', (e) => {
    e.preventDefault();
    const v = Object.fromEntries(new FormData(form));
    const body = { reason: v.cls_reason.trim(), grade: v.cls_grade !== d.grade ? v.cls_grade : undefined,
      category: v.cls_category !== d.category ? v.cls_category : undefined };
    if (!body.grade && !body.category) return toast(t('nothing_changed'), 'error');
    if (!body.reason) return toast(t('reason_required'), 'error');
    ctx.send('/classify', body, e.submitter);
  });
  return section(t('classify'), 'detail-classify', form);
}

// Notes are internal by default: the owner never sees them. "回复业主" writes a public note, which
// the owner's page and app show (docs/web.md).
function notesCard(d, ctx) {
  const choice = (value, text, checked) => h('label', { class: 'inline' },
    h('input', { type: 'radio', name: 'note_visibility', value, checked, 'data-testid': `note-${value}` }), ' ', text);
  const form = h('form', { class: 'stack' },
    h('textarea', { name: 'note_text', 'data-testid': 'note-text', rows: 2, required: true, 'aria-label': t('note_add') }),
    h('div', { role: 'radiogroup', 'aria-label': t('note_visibility') },
      choice('internal', t('note_internal'), true), ' ', choice('public', t('note_public'), false)),
    h('div', {}, h('button', { type: 'submit', 'data-testid': 'note-submit' }, t('note_add'))));
  form.addEventListener('submit', (e) => {
    e.preventDefault();
    ctx.send('/notes', { text: form.elements.note_text.value.trim(), visibility: form.elements.note_visibility.value }, e.submitter);
  });
  return section(t('notes'), 'detail-notes',
    h('ul', { class: 'notes' }, (d.notes ?? []).map((n) => h('li', { 'data-testid': 'note', 'data-visibility': n.visibility, class: n.visibility === 'internal' ? 'internal' : null },
      h('div', { class: 'muted' }, `${person(d, n.who, n.author)} · ${fmtTime(n.at)} `,
        h('span', { class: `badge ${n.visibility === 'internal' ? 'internal' : 'public'}` }, t(n.visibility === 'internal' ? 'badge_internal' : 'badge_public'))),
      h('div', { class: 'text' }, noteText(n))))),
    form);
}

function workCard(d) {
  const [parts, times, checks] = [d.parts, d.time_log, d.checklist].map((x) => x ?? []);
  if (!parts.length && !times.length && !checks.length) return null;
  return section(t('work'), 'detail-work',
    parts.length > 0 && [h('h4', {}, t('parts')), table([t('name'), t('quantity'), t('author'), t('at')],
      parts.map((p) => row([p.name, p.quantity, person(d, p.who, p.author), fmtTime(p.at)])))],
    times.length > 0 && [h('h4', {}, t('time_log')), table([t('author'), t('start'), t('end'), t('duration')],
      times.map((x) => row([x.who ?? x.author, fmtTime(x.start), x.end == null ? t('ongoing') : fmtTime(x.end), fmtDuration((x.end ?? Date.now()) - x.start)])))],
    checks.length > 0 && [h('h4', {}, t('checklist')),
      h('ul', { class: 'checklist' }, checks.map((c) => h('li', { class: c.done ? 'done' : null }, `${c.done ? '☑' : '☐'} ${c.label}`)))]);
}

// The seeded SLA book's policies by name (an organization's own keep the names it gave them).
const POLICY_NAMES = { 'complaint-minor': 'policy_complaint_minor', default: 'policy_default' };
const policyName = (name) => (POLICY_NAMES[name] ? t(POLICY_NAMES[name])
  : vocab.grades?.some((g) => g.code === name) ? t('policy_grade', label('grades', name)) : name);

function deadlinesCard(d) {
  const c = d.countdown;
  const pauses = d.pauses ?? [];
  if (!c && !pauses.length && d.auto_confirm_at == null) return null;
  const stages = c ? [['response', c.response_due, c.responded_at], ['arrival', c.arrival_due, c.arrived_at], ['resolution', c.resolution_due, c.resolved_at]] : [];
  const state = (stage, due, done) => {
    if (done != null) { const late = due != null && done > due; return h('span', { class: `badge ${late ? 'late' : 'met'}` }, t(late ? 'late' : 'met')); }
    if (due == null) return null;
    return c.paused ? h('span', { class: 'badge paused' }, t('paused')) : slaBadge(d.sla?.stage === stage ? d.sla : { stage, due_at: due });
  };
  const holding = d.status === 'on_hold' && (d.hold_reason ?? pauses.at(-1)?.reason);
  return section(t('deadlines'), 'detail-deadlines',
    c?.policy && muted(`${t('policy')}: ${policyName(c.policy)}`),
    c?.paused && h('p', { 'data-testid': 'detail-paused' }, h('span', { class: 'badge paused' }, holding ? t('paused_for', label('hold_reasons', holding)) : t('paused'))),
    d.status === 'awaiting_confirmation' && d.auto_confirm_at != null && h('p', { 'data-testid': 'detail-auto-confirm' },
      t('auto_confirm_at', fmtTime(d.auto_confirm_at), fmtDuration(Math.max(0, d.auto_confirm_at - Date.now())))),
    stages.length > 0 && table([t('stage'), t('due'), t('done_at'), t('status')],
      stages.map(([s, due, done]) => row([t(`stage_${s}`), fmtTime(due), fmtTime(done), state(s, due, done)]))),
    pauses.length > 0 && [h('h4', {}, t('pauses')), table([t('from'), t('to'), t('hold_reason'), t('duration')],
      pauses.map((p) => row([fmtTime(p.from), p.to == null ? t('ongoing') : fmtTime(p.to), label('hold_reasons', p.reason), fmtDuration((p.to ?? Date.now()) - p.from)])))]);
}

function ratingCard(d) {
  if (d.rating == null && !d.auto_confirmed) return null;
  return section(t('rating'), 'detail-rating',
    d.rating != null && h('p', { class: 'stars-static' }, '★'.repeat(d.rating) + '☆'.repeat(5 - d.rating), ` ${t('stars_n', d.rating)}`),
    d.rating_comment && h('blockquote', { 'data-testid': 'detail-rating-comment' }, d.rating_comment),
    d.auto_confirmed && h('p', {}, h('span', { class: 'badge' }, t('auto_confirmed'))));
}

function slaEventsCard(d) {
  const events = d.sla_events ?? [];
  if (!events.length) return null;
  return section(t('sla_events'), 'detail-sla-events', table([t('stage'), t('level'), t('due'), t('at')],
    events.map((e) => row([t(`stage_${e.stage}`), h('span', {}, h('span', { class: `badge lvl-${e.level}` }, t(`level_${e.level}`)),
      e.covered && h('span', { class: 'muted', 'data-testid': 'sla-event-covered', title: t('sla_covered_hint') }, ` ${t('sla_covered')}`)),
      fmtTime(e.due_at ?? e.due_ms), fmtTime(e.at ?? e.at_ms ?? e.fired_at_ms)]))));
}

// Who did something, by name: staff by their name; the order's reporting owner as 业主 and the
// unit (their name is personal data: the contact card reveals it); anyone else by role. Never a
// raw user id.
function person(d, who, id, role) {
  if (who) return who;
  if (id && id === d.reporter) return [label('roles', 'owner'), d.unit].filter(Boolean).join(' ');
  return role ? '' : t('someone');
}

// The audit trail; its items' fields vary by kind, so each part is shown only when present.
const ENTRY_LABEL = { note: 'notes', part: 'parts', time: 'time_log', attachment: 'attachments', auto_confirm: 'auto_confirmed' };
function timelineCard(d) {
  const items = d.timeline ?? [];
  if (!items.length) return null;
  return section(t('timeline'), 'detail-timeline', h('ol', { class: 'timeline' }, items.map((it) => {
    const what = it.what ?? it.action ?? it.kind;
    // The owner's confirmation recorded by staff (taken by phone) says so.
    const byPhone = what === 'confirm' && it.role && it.role !== 'owner';
    let title = byPhone ? t('confirm_by_phone') : vocab.actions?.some((a) => a.code === what) ? label('actions', what) : ENTRY_LABEL[what] ? t(ENTRY_LABEL[what]) : show(what);
    // A completion the owner signed says so (the picture is among the photos).
    if (it.signature) title = `${title} · ${t('owner_signature')}`;
    if (what === 'attachment' && it.attachment_kind === 'signature') title = t('owner_signature');
    const refused = it.verdict != null && !['applied', 'accepted'].includes(it.verdict);
    const reason = lang === 'en' ? it.reason_en ?? it.reason_zh : it.reason_zh ?? it.reason_en;
    const who = it.who ? [it.who, it.role && label('roles', it.role)].filter(Boolean).join(' · ')
      : person(d, null, it.by, it.role) || (it.role && label('roles', it.role)) || '';
    const details = [it.name && `${it.name} × ${it.quantity ?? 1}`, it.start != null && it.end != null && fmtDuration(it.end - it.start), noteText(it)].filter(Boolean).join(' · ');
    return h('li', { class: refused ? 'refused' : null, 'data-testid': 'timeline-item' },
      h('time', {}, fmtTime(it.at ?? it.received_at_ms ?? it.device_time_ms)), ' ',
      h('strong', {}, title), ' ',
      !refused && it.status_after && h('span', {}, `→ ${label('statuses', it.status_after)} `),
      who && h('span', { class: 'muted' }, who), ' ',
      refused && h('span', { class: 'badge refused' }, t('superseded')),
      it.visibility === 'internal' && h('span', { class: 'badge internal' }, t('badge_internal')),
      details && h('div', {}, details),
      reason && h('div', { class: 'reason' }, reason));
  })));
}

function rejectedCard(d) {
  const items = d.rejected_edits ?? [];
  if (!items.length) return null;
  return section(t('rejected_edits'), 'detail-rejected', table([t('at'), t('what'), t('author'), t('reason')],
    items.map((x) => row([fmtTime(x.at), x.what, person(d, x.who, x.by, x.role) || label('roles', x.role), (lang === 'en' ? x.reason_en : x.reason_zh) ?? x.reason_code]))));
}

// ---- notifications and return visits

// Alerts grouped by order (newest first): what and where, who works it, each alert with its
// stage and level; one click marks them all read.
function notificationsView() {
  const list = h('div', { 'data-testid': 'notifications' });
  const sound = h('label', { class: 'check' }, h('input', { type: 'checkbox', 'data-testid': 'sound-toggle', checked: localStorage.getItem('loopwork.sound') === 'on',
    onchange: (e) => { localStorage.setItem('loopwork.sound', e.target.checked ? 'on' : 'off'); if (e.target.checked) beep(); } }), t('sound'));
  const all = h('button', { type: 'button', 'data-testid': 'mark-all-read', onclick: (e) => busy(e.currentTarget, async () => {
    await api('/api/v1/notifications/read-all', { method: 'POST' });
    await reload();
  }) }, t('mark_all_read'));
  mount([h('div', { class: 'row-top' }, h('h2', {}, t('tab_notifications')), h('div', { class: 'row' }, sound, all)), list], async () => {
    const items = (await refreshUnread()) ?? [];
    // An incident's and a deviation's alerts are about them, not about an order's deadline.
    const key = (n) => n.stage === 'incident' ? `incident:${n.subject}` : n.stage === 'deviation' ? `deviation:${n.level}:${n.subject}` : n.order_id;
    const groups = new Map();
    for (const n of items) {
      if (!groups.has(key(n))) groups.set(key(n), []);
      groups.get(key(n)).push(n);
    }
    const what = (o, order, markRead) => {
      if (o.stage === 'incident') {
        return [h('a', { href: `#incidents/${encodeURIComponent(o.subject)}`, class: 'number', 'data-testid': 'notification-incident', onclick: markRead }, t('incident_n', o.subject)),
          h('span', {}, [o.category && label('categories', o.category), o.building && t('building_n', o.building)].filter(Boolean).join(' · '))];
      }
      if (o.stage === 'deviation') {
        const [project, category] = (o.subject ?? '').split('/');
        return [h('a', { href: '#deviations', class: 'number', 'data-testid': 'notification-deviation', onclick: markRead }, t(`measure_${o.level}`)),
          h('span', {}, [projectName(project), category && label('categories', category)].filter(Boolean).join(' · '))];
      }
      return [o.number ? h('a', { href: `#order/${encodeURIComponent(order)}`, class: 'number', onclick: markRead }, o.number) : h('span', { class: 'muted' }, t('notif_order_gone')),
        o.grade && gradeBadge(o.grade), o.category && label('categories', o.category), o.number && place(o),
        o.number && h('span', { class: 'muted' }, `${t('assignee')}: ${o.assignee_name ?? t('unassigned')}`)];
    };
    list.replaceChildren(...(groups.size ? [...groups].map(([group, alerts]) => {
      const o = alerts[0];
      const order = o.order_id;
      const unread = alerts.filter((n) => n.read_at_ms == null);
      const markRead = () => Promise.all(unread.map((n) => api(`/api/v1/notifications/${encodeURIComponent(n.id)}/read`, { method: 'POST' }))).catch(() => {});
      return h('section', { class: `card notif ${unread.length ? 'unread' : 'read'}`, 'data-testid': 'notification-group', 'data-order': order, 'data-group': group },
        h('div', { class: 'row' },
          ...what(o, order, () => { if (unread.length) markRead(); }),
          unread.length > 0 && h('button', { type: 'button', 'data-testid': 'notification-read', onclick: (e) => busy(e.currentTarget, async () => { await markRead(); await reload(); }) }, t('mark_read'))),
        h('ul', { class: 'plain' }, alerts.map((n) => h('li', { 'data-testid': 'notification-row', 'data-id': n.id, class: n.read_at_ms == null ? 'unread' : 'read' },
          h('span', { class: `badge lvl-${n.level}` }, t(`level_${n.level}`)), ' ', t(`stage_${n.stage}`), ' · ',
          n.stage === 'incident' || n.stage === 'deviation' ? '' : `${t('due')} ${fmtTime(n.due_ms)} · `, h('span', { class: 'muted' }, fmtTime(n.created_at_ms))))));
    }) : [muted(t('none'))]));
  });
}

function visitsView() {
  const list = h('div');
  mount([h('h2', {}, t('visits_title')), list], async () => {
    const items = await api('/api/v1/return-visits');
    list.replaceChildren(items.length ? table([t('number'), t('kind'), t('status'), t('rating'), t('reason'), t('since'), t('due'), t('deadline')], items.map((v) => {
      const id = v.id ?? v.order_id;
      const due = v.due_at ?? v.due_ms;
      const why = (v.reasons ?? []).map((r) => label('return_visit_reasons', r)).join(lang === 'en' ? ', ' : '、');
      return row([orderLink(id, v.number), label('kinds', v.kind), statusBadge(v.status), v.rating && '★'.repeat(v.rating), why,
        fmtTime(v.since_at ?? v.since_ms), fmtTime(due), slaBadge(due == null ? null : { due_at: due })], { 'data-testid': 'visit-row', 'data-id': id });
    })) : muted(t('none')));
  });
}

// ---- dashboard and KPIs

const rangeQuery = (r) => ({ project: r.project, from: dayStart(r.from), to: dayStart(r.to) + DAY });

// ---- the printed work order (派工单)

// An order on paper for the technician: A4, or an 80 mm receipt printer's roll, with its QR code
// (the technicians' app opens the order from it) and lines for the signatures.
function printView(id) {
  const format = st.printFormat ?? 'a4';
  const sheet = h('div', { class: `print-sheet ${format}`, 'data-testid': 'print-sheet' });
  const choose = (f) => h('button', { type: 'button', class: f === format ? 'primary' : null, 'data-testid': `print-${f}`,
    onclick: () => { st.printFormat = f; printView(id); } }, t(`print_${f}`));
  const bar = h('div', { class: 'row no-print' }, h('a', { href: `#order/${encodeURIComponent(id)}` }, `← ${t('back')}`),
    choose('a4'), choose('receipt'), h('button', { type: 'button', class: 'primary', 'data-testid': 'print-now', onclick: () => window.print() }, t('print_now')));
  mount([bar, sheet], async () => {
    const url = `/api/v1/orders/${encodeURIComponent(id)}`;
    // The QR code needs the bearer token: fetched, then shown inline.
    const [d, contact, qr] = await Promise.all([api(url), api(`${url}/contact`).catch(() => null),
      api(`${url}/qr.svg`, { raw: true }).then((r) => r.text()).catch(() => null)]);
    const project = st.me.projects?.find((p) => p.code === d.project)?.name ?? d.project;
    const c = d.countdown ?? {};
    const facts = [['kind', label('kinds', d.kind)], ['category', label('categories', d.category)], ['grade', label('grades', d.grade)],
      ['project', project], ['location', place(d)], ['channel', label('channels', d.channel)], ['created_at', fmtTime(d.created_at)],
      d.caller ? ['caller', [d.caller.name, d.caller.phone].filter(Boolean).join(' ')] : ['reporter', contact && [contact.name, contact.phone].filter(Boolean).join(' ')],
      ['assignee', d.assignee_name], ['appointment', d.appointment && fmtWindow(d.appointment)],
      ['print_response_due', fmtTime(c.response_due)], ['print_resolution_due', fmtTime(c.resolution_due)]];
    sheet.replaceChildren(
      h('header', { class: 'print-head' },
        h('div', {}, h('div', { class: 'muted' }, project), h('h2', {}, t('print_title')), h('div', { class: 'number big', 'data-testid': 'print-number' }, d.number)),
        // A data: URL: the page's content security policy allows images from the server and data: only.
        qr && h('img', { src: `data:image/svg+xml;charset=utf-8,${encodeURIComponent(qr)}`, alt: d.number, class: 'qr', 'data-testid': 'print-qr' })),
      h('p', { class: 'description' }, d.description),
      h('dl', { class: 'facts' }, facts.flatMap(([k, v]) => [h('dt', {}, t(k)), h('dd', {}, show(v))])),
      h('div', { class: 'sign' }, ['print_arrived', 'print_done', 'print_parts', 'print_tech_sign', 'print_owner_sign'].map((k) => h('div', { class: 'sign-line' }, t(k))),
        h('div', { class: 'sign-line' }, t('print_satisfaction'), ' ', ['很满意', '满意', '一般', '不满意'].map((x) => h('span', { class: 'gap' }, `□ ${x}`)))),
      h('footer', { class: 'muted' }, t('print_footer', fmtTime(Date.now()))));
  });
}

// ---- estate register (房屋档案)

// A project's buildings (natural order), a building's units, one unit's residents and orders;
// supervisors also import the register from a spreadsheet. Phones are masked; 查看号码 shows the
// whole number, and the server logs that it did.
function estateView() {
  const projects = st.me.projects ?? [];
  const e = (st.estate ??= { project: projects[0]?.code, building: null, unit: null });
  const go = (change) => { Object.assign(e, change); reload(); };
  const summary = h('span', { class: 'muted', 'data-testid': 'estate-summary' });
  const head = h('div', { class: 'card filters' },
    field(t('project'), h('select', { 'data-testid': 'estate-project', value: e.project ?? '', onchange: (ev) => go({ project: ev.target.value, building: null, unit: null }) },
      projects.map((p) => h('option', { value: p.code }, p.name ?? p.code)))), summary);
  const buildingsBox = h('div', { class: 'chips card', 'data-testid': 'estate-buildings' });
  const unitsBox = h('div', { 'data-testid': 'estate-units' });
  const unitBox = h('div', { 'data-testid': 'estate-unit' });
  const supervisor = st.me.role !== 'dispatcher';
  mount([h('h2', {}, t('estate_title')), head, buildingsBox, unitsBox, unitBox, supervisor && importCard(() => e.project, reload)], async () => {
    const [all, buildings] = await Promise.all([api('/api/v1/estate/projects'),
      e.project ? api('/api/v1/estate/buildings', { query: { project: e.project } }) : []]);
    const p = all.find((x) => x.code === e.project);
    summary.textContent = p ? t('estate_summary', p.buildings, p.units, p.residents) : '';
    buildingsBox.replaceChildren(...(buildings.length ? buildings.map((b) => h('button', {
      type: 'button', class: `chip ${b.building === e.building ? 'active' : ''}`, 'data-testid': 'estate-building', 'data-building': b.building,
      onclick: () => go({ building: b.building, unit: null }) }, t('building_n', b.building), h('small', {}, ` ${b.units}`)))
      : [muted(t('estate_empty'))]));
    if (!e.building) { unitsBox.replaceChildren(); unitBox.replaceChildren(); return; }
    const units = await api('/api/v1/estate/units', { query: { project: e.project, building: e.building } });
    // Units as `entrance-room` are grouped by entrance (单元), in the order the server gives.
    const groups = new Map();
    for (const u of units) {
      const entrance = u.unit.includes('-') ? u.unit.slice(0, u.unit.indexOf('-')) : '';
      if (!groups.has(entrance)) groups.set(entrance, []);
      groups.get(entrance).push(u);
    }
    const button = (u) => h('button', {
      type: 'button', class: `unit ${u.unit === e.unit ? 'active' : ''} ${u.open_orders ? 'has-open' : ''}`, 'data-testid': 'estate-unit-button', 'data-unit': u.unit,
      title: [u.residents && t('residents_n', u.residents), u.open_orders && t('open_n', u.open_orders)].filter(Boolean).join(' · '),
      onclick: () => go({ unit: u.unit }) }, u.unit);
    unitsBox.replaceChildren(section(t('building_n', e.building), 'estate-units-card',
      [...groups].map(([entrance, list]) => h('div', { class: 'entrance' },
        entrance && h('h4', {}, t('entrance_n', entrance)), h('div', { class: 'unit-grid' }, list.map(button)))),
      !e.unit && muted(t('choose_unit'))));
    if (!e.unit) { unitBox.replaceChildren(); return; }
    const d = await api('/api/v1/estate/unit', { query: { project: e.project, building: e.building, unit: e.unit } });
    unitBox.replaceChildren(unitCard(d));
  });
}

function unitCard(d) {
  const reveal = (r) => (ev) => {
    const cell = ev.currentTarget.closest('td');
    busy(ev.currentTarget, async () => {
      const { phone } = await api(`/api/v1/estate/residents/${encodeURIComponent(r.id)}/reveal`, { method: 'POST' });
      cell.replaceChildren(h('a', { href: `tel:${phone}`, 'data-testid': 'resident-phone-full' }, phone));
      toast(t('revealed_logged'));
    });
  };
  const remove = (r) => (ev) => {
    if (!confirm(t('remove_confirm'))) return;
    busy(ev.currentTarget, async () => {
      await api(`/api/v1/estate/residents/${encodeURIComponent(r.id)}`, { method: 'DELETE' });
      await reload();
    });
  };
  const residents = d.residents.length
    ? table([t('name'), t('relation'), t('phone'), ''], d.residents.map((r) => h('tr', { 'data-testid': 'resident-row', 'data-id': r.id },
      h('td', {}, r.name), h('td', {}, r.relation_label),
      h('td', {}, h('span', { 'data-testid': 'resident-phone' }, r.phone), ' ',
        h('button', { type: 'button', 'data-testid': 'reveal-phone', onclick: reveal(r) }, t('reveal_phone'))),
      h('td', {}, h('button', { type: 'button', class: 'danger', 'data-testid': 'remove-resident', onclick: remove(r) }, t('remove'))))))
    : muted(t('no_residents'));
  const add = h('form', { class: 'row', 'data-testid': 'add-resident' },
    h('input', { name: 'name', placeholder: t('name'), required: true, size: 8, 'data-testid': 'resident-name' }),
    h('input', { name: 'phone', type: 'tel', placeholder: t('phone'), required: true, size: 14, 'data-testid': 'resident-phone-input' }),
    h('select', { name: 'relation', 'data-testid': 'resident-relation' }, ['owner', 'tenant', 'family'].map((x) => h('option', { value: x }, t(`rel_${x}`)))),
    h('button', { type: 'submit', 'data-testid': 'resident-add' }, t('add_resident')));
  add.addEventListener('submit', (ev) => {
    ev.preventDefault();
    const v = Object.fromEntries(new FormData(add));
    busy(ev.submitter, async () => {
      await api('/api/v1/estate/residents', { method: 'POST', body: { project: d.project, building: d.building, unit: d.unit, ...v } });
      await reload();
    });
  });
  const orders = d.orders.length
    ? table([t('number'), t('kind'), t('category'), t('status'), t('created_at')], d.orders.map((o) => h('tr', { 'data-testid': 'unit-order' },
      [orderLink(o.id, o.number), label('kinds', o.kind), label('categories', o.category), statusBadge(o.status), fmtTime(o.created_at)].map((c) => h('td', {}, c)))))
    : muted(t('no_unit_orders'));
  return h('div', { class: 'detail-grid two' },
    section(`${t('building_n', d.building)} ${d.unit} · ${t('residents')}`, 'unit-residents', residents, add),
    section(t('unit_orders'), 'unit-orders', orders));
}

// The import: a file previewed (nothing written), its faulty rows listed; applied once clean.
function importCard(project, done) {
  const file = h('input', { type: 'file', accept: '.xlsx,.csv', 'data-testid': 'import-file' });
  const report = h('div', { 'data-testid': 'import-report' });
  const apply = h('button', { type: 'button', class: 'primary', 'data-testid': 'import-apply', disabled: true }, t('import_apply'));
  const preview = h('button', { type: 'button', 'data-testid': 'import-preview' }, t('import_preview'));
  const send = async (applying) => {
    const f = file.files[0];
    const url = new URL('/api/v1/estate/import', location.origin);
    if (project()) url.searchParams.set('project', project());
    if (applying) url.searchParams.set('apply', 'true');
    const res = await fetch(url, { method: 'POST', body: f, headers: { Authorization: `Bearer ${session.get()?.token}`, 'Content-Type': 'application/octet-stream' } });
    const body = await res.json().catch(() => null);
    if (!res.ok && res.status !== 422) throw new ApiError(res.status, body?.error);
    return body;
  };
  const paint = (r) => {
    const c = r.counts;
    report.replaceChildren(...[
      h('p', { 'data-testid': 'import-counts' }, t('import_counts', r.rows, c.units_new, c.units_existing, c.residents_new, c.residents_updated, c.residents_unchanged)),
      r.ignored_columns.length > 0 && muted(t('import_ignored', r.ignored_columns.join('、'))),
      r.errors.length > 0 && [h('p', { class: 'error' }, t('import_errors', new Set(r.errors.map((x) => x.row)).size)),
        table([t('row'), t('column'), t('reason')], r.errors.map((x) => h('tr', { 'data-testid': 'import-error' },
          h('td', {}, x.row), h('td', {}, t(x.column)), h('td', {}, lang === 'zh' ? x.message_zh : x.message))))],
      r.preview.length > 0 && table([t('row'), t('building'), t('unit'), t('name'), t('phone'), t('relation')], r.preview.map((x) => h('tr', {},
        [x.row, x.building, x.unit, x.name, x.phone, x.relation && t(`rel_${x.relation}`)].map((v) => h('td', {}, show(v))))))]
      .flat().filter(Boolean));
    apply.disabled = r.applied || r.errors.length > 0;
  };
  file.addEventListener('change', () => { report.replaceChildren(); apply.disabled = true; });
  preview.addEventListener('click', () => {
    if (!file.files[0]) return toast(t('choose_file'), 'error');
    busy(preview, async () => paint(await send(false)));
  });
  apply.addEventListener('click', () => busy(apply, async () => {
    const r = await send(true);
    paint(r);
    if (r.applied) { toast(t('import_done')); await done(); }
  }));
  return section(t('import_title'), 'estate-import', muted(t('import_hint')), h('div', { class: 'row' }, file, preview, apply), report);
}

// Project and dates, shared by the dashboard and the KPIs; the first project and the last 30 days at first.
function rangeBar(extra) {
  const r = (st.range ??= { project: st.me.projects?.[0]?.code ?? '', from: shanghaiDate(Date.now() - 29 * DAY), to: shanghaiDate(Date.now()) });
  const set = (key) => (e) => { if (e.target.value || key === 'project') { r[key] = e.target.value; reload(); } };
  return h('div', { class: 'filters card' },
    field(t('project'), h('select', { 'data-testid': 'range-project', value: r.project, onchange: set('project') },
      h('option', { value: '' }, t('all_projects')), (st.me.projects ?? []).map((p) => h('option', { value: p.code }, p.name ?? p.code)))),
    field(t('from'), h('input', { type: 'date', 'data-testid': 'range-from', value: r.from, onchange: set('from') })),
    field(t('to'), h('input', { type: 'date', 'data-testid': 'range-to', value: r.to, onchange: set('to') })),
    h('div', { class: 'buttons' }, extra));
}

function dashboardView() {
  const eff = h('div', { 'data-testid': 'efficiency' });
  const pm = h('div', { 'data-testid': 'maintenance-figures' });
  const heat = h('div', { class: 'heat-grids' });
  const picked = h('div', { 'data-testid': 'heat-orders' });
  let cell = null; // the heat-map cell whose orders are listed
  // The heat map of one kind (投诉 by default, as the manual's 投诉热力图) or of all.
  const kind = () => st.heatKind ?? 'complaint';
  const listCell = async (c) => {
    const rows = await api('/api/v1/orders', { query: { ...rangeQuery(st.range), kind: kind(), limit: 200, ...c.query } });
    picked.replaceChildren(h('h4', {}, c.title), rows.length ? ordersTable(rows, { rowId: 'heat-order-row' }) : muted(t('no_orders')));
  };
  const pick = (c) => { cell = c; listCell(c).catch(showError); };
  const kinds = h('select', { 'data-testid': 'heat-kind', 'aria-label': t('kind'), value: kind(),
    onchange: (e) => { st.heatKind = e.target.value; cell = null; picked.replaceChildren(); reload(); } }, options('kinds', t('all')));
  const refresh = h('button', { type: 'button', 'data-testid': 'dashboard-refresh', onclick: () => reload() }, t('refresh'));
  mount([rangeBar(refresh),
    h('section', { class: 'card' }, h('h3', {}, t('eff_title')), eff),
    h('section', { class: 'card' }, h('h3', {}, t('pm_title')), pm),
    h('section', { class: 'card', 'data-testid': 'heatmap' }, h('div', { class: 'row-top' }, h('h3', {}, t('heat_title_of')), kinds), muted(t('heat_pick')), heat, picked)],
  async () => {
    const q = rangeQuery(st.range);
    // The period before, as long, for the trends.
    const span = q.to - q.from;
    const before = { ...q, from: q.from - span, to: q.from };
    const [e, prev, m, planned] = await Promise.all([api('/api/v1/dashboard/efficiency', { query: q }),
      api('/api/v1/dashboard/efficiency', { query: before }).catch(() => null),
      // 全部 is the empty choice; the server reads no kind as complaints, and `all` as every kind.
      api('/api/v1/dashboard/heatmap', { query: { ...q, kind: kind() || 'all' } }),
      api('/api/v1/dashboard/maintenance', { query: q })]);
    // The open incidents, marked on the cells they cover (live: the desk reloads on notices).
    // With every project chosen, building numbers repeat across projects: marked only when
    // the organization has one.
    const single = q.project || (st.me.projects?.length === 1 ? st.me.projects[0].code : null);
    const incidents = single ? (await openIncidents().catch(() => [])).filter((i) => i.project === single) : [];
    eff.replaceChildren(...efficiency(e, prev));
    pm.replaceChildren(...maintenanceFigures(planned).filter(Boolean));
    heat.replaceChildren(...heatGrids(m, pick, cell?.key, incidents));
    if (cell) await listCell(cell);
  });
  st.poll = setInterval(reload, 60_000); // figures are materialized in the background, not all announced live
}

// What each figure means (shown on hover), and which way is better for the trend's colour.
const DEFINITIONS = {
  eff_orders: ['def_orders', 0], eff_response: ['def_response', -1], eff_arrival: ['def_arrival', -1], eff_resolution: ['def_resolution', -1],
  eff_sla: ['def_sla', 1], eff_ftf: ['def_ftf', 1], eff_rework: ['def_rework', -1], eff_avg: ['def_avg', 1], eff_rated: ['def_rated', 0], eff_share: ['def_share', 1],
};

function efficiency(e, prev) {
  const p = (x) => (x?.count ? `${fmtDuration(x.p50_ms)} / ${fmtDuration(x.p90_ms)}` : null);
  const s = e.satisfaction ?? {};
  const share = s.share_4_or_more;
  const goal = s.goal ?? 0.85;
  const b = e.backlog ?? {};
  // A figure with its definition, "暂无数据" when nothing was measured, and the change against the
  // period before (▲/▼, green when better).
  const stat = (key, value, extra, now, then, unit = 'pct', href = null) => {
    const [def, better] = DEFINITIONS[key] ?? [];
    let trend = null;
    if (now != null && then != null && now !== then) {
      const up = now > then;
      const delta = unit === 'pct' ? `${Math.abs(Math.round((now - then) * 100))}%` : unit === 'ms' ? fmtDuration(Math.abs(now - then)) : String(Math.abs(+(now - then).toFixed(2)));
      const good = better === 0 ? null : (up ? better > 0 : better < 0);
      trend = h('span', { class: `trend ${good == null ? '' : good ? 'good' : 'bad'}`, 'data-testid': 'trend', title: t('vs_before') }, `${up ? '▲' : '▼'} ${delta}`);
    }
    return h('div', { class: 'stat', title: def ? t(def) : null, 'data-testid': `stat-${key}` }, h('div', { class: 'muted' }, t(key), def ? ' ⓘ' : ''),
      h('div', { class: 'stat-value', 'data-testid': key.replace('_', '-') }, value == null || value === '—' ? h('span', { class: 'muted no-data' }, t('no_data'))
        : href ? h('a', { href, 'data-testid': `open-${key}` }, show(value)) : show(value), ' ', trend), extra);
  };
  const n = (x) => muted(`n = ${x?.count ?? 0}`);
  const ps = prev?.satisfaction ?? {};
  const nonZero = (x) => (e.orders ? x : null);
  return [
    h('div', { class: 'stats' },
      // The orders counted: the period's orders in the queue, all but the cancelled (as counted).
      stat('eff_orders', e.orders, null, e.orders, prev?.orders, 'n', st.range && queueOf({ status: 'not_cancelled', from: rangeQuery(st.range).from, to: rangeQuery(st.range).to })),
      stat('eff_response', p(e.response), n(e.response), e.response?.count ? e.response.p50_ms : null, prev?.response?.count ? prev.response.p50_ms : null, 'ms'),
      stat('eff_arrival', p(e.arrival), n(e.arrival), e.arrival?.count ? e.arrival.p50_ms : null, prev?.arrival?.count ? prev.arrival.p50_ms : null, 'ms'),
      stat('eff_resolution', p(e.resolution), n(e.resolution), e.resolution?.count ? e.resolution.p50_ms : null, prev?.resolution?.count ? prev.resolution.p50_ms : null, 'ms'),
      stat('eff_sla', nonZero(e.sla_compliance) == null ? null : pct(e.sla_compliance), null, nonZero(e.sla_compliance), prev?.orders ? prev.sla_compliance : null),
      stat('eff_ftf', e.first_time_fix_rate == null ? null : pct(e.first_time_fix_rate), null, e.first_time_fix_rate, prev?.first_time_fix_rate),
      stat('eff_rework', e.rework_rate == null ? null : pct(e.rework_rate), null, e.rework_rate, prev?.rework_rate),
      stat('eff_avg', s.average?.toFixed(2), null, s.average, ps.average, 'n'), stat('eff_rated', s.rated ?? 0, null, s.rated, ps.rated, 'n'),
      stat('eff_share', share == null ? null : pct(share), [
        h('div', { class: `meter${share != null && share < goal ? ' below' : ''}` },
          h('span', { class: 'fill', style: { width: `${(share ?? 0) * 100}%` } }), h('span', { class: 'goal', style: { left: pct(goal) } })),
        muted(`${t('goal')} ${pct(goal)}`)], share, ps.share_4_or_more)),
    // Each bar opens the queue with its orders.
    h('div', { class: 'backlog' },
      bars(t('backlog_age'), (b.by_age ?? []).map((x) => [t(`age_${x.bucket}`), x.count, queueOf({ status: 'open', sort: 'created_asc', ...ageRange(x.bucket) })])),
      bars(t('backlog_tech'), (b.by_technician ?? []).map((x) => [x.name ?? t('unassigned'), x.count, x.user_id ? queueOf({ status: 'open', assignee: x.user_id }) : queueOf({ status: 'new' })])),
      bars(t('backlog_grade'), (b.by_grade ?? []).map((x) => [label('grades', x.grade), x.count, queueOf({ status: 'open', grade: x.grade })]))),
  ];
}

// The queue's URL for a backlog bar: its filters, in the dashboard's project.
const queueOf = (filters) => `#queue?${new URLSearchParams(Object.entries({ project: st.range?.project, ...filters }).filter(([, v]) => v))}`;
// An age bucket as a range of creation times.
function ageRange(bucket) {
  const now = Date.now();
  const [older, newer] = { lt_1d: [null, 0], '1_3d': [3, 1], '3_7d': [7, 3], gt_7d: [null, 7] }[bucket] ?? [null, null];
  if (bucket === 'lt_1d') return { from: now - DAY };
  return { from: older == null ? null : now - older * DAY, to: newer == null ? null : now - newer * DAY };
}

function bars(title, items) {
  const max = Math.max(1, ...items.map(([, n]) => n));
  return h('div', { class: 'bars' }, h('h4', {}, title), items.length ? items.map(([name, n, href]) => h(href ? 'a' : 'div', { class: 'bar-row', href, 'data-testid': 'bar-row' },
    h('span', {}, name), h('span', { class: 'bar', style: { '--w': (n / max).toFixed(3) } }), h('span', {}, n))) : muted(t('none')));
}

// Two grids: building × category and weekday × hour; a cell's shade is its share of the grid's maximum.
function heatGrids(m, pick, selected, incidents = []) {
  // The open incident covering a building's category, if any (an incident of the whole
  // community covers every building; one of every category, every category).
  const incidentAt = (b, c) => incidents.find((i) => (!i.building || i.building === b) && (i.category === '*' || i.category === c));
  const unique = (xs) => [...new Set(xs)];
  const byBuilding = new Map((m.by_building ?? []).map((x) => [`${x.building}|${x.category}`, x.count]));
  const byHour = new Map((m.by_hour ?? []).map((x) => [`${x.weekday}|${x.hour}`, x.count]));
  const buildings = m.buildings?.length ? m.buildings : unique((m.by_building ?? []).map((x) => x.building));
  const categories = m.categories?.length ? m.categories : unique((m.by_building ?? []).map((x) => x.category));
  const grid = (title, rows, cols, rowLabel, colLabel, count, cellOf, marked = () => null) => {
    const max = Math.max(1, ...rows.flatMap((r) => cols.map((c) => count(r, c))));
    const td = (r, c) => {
      const n = count(r, c);
      const incident = marked(r, c);
      if (!n) return h('td', { class: `heat-empty${incident ? ' heat-incident' : ''}` });
      const cell = cellOf(r, c);
      const choose = (e) => {
        for (const x of document.querySelectorAll('.heat-cell.selected')) x.classList.remove('selected');
        e.currentTarget.classList.add('selected');
        pick(cell);
      };
      return h('td', { class: `heat-cell${cell.key === selected ? ' selected' : ''}${incident ? ' heat-incident' : ''}`, 'data-testid': 'heat-cell', ...cell.attrs,
        'data-incident': incident?.number, tabindex: 0, role: 'button',
        title: `${cell.title}: ${n}${incident ? ` · ${t('incident_n', incident.number)}` : ''}`, style: { '--i': (n / max).toFixed(3) },
        onclick: choose, onkeydown: (e) => { if (e.key === 'Enter') choose(e); } }, n, incident ? ' ⚠' : '');
    };
    return h('div', { class: 'heat-block' }, h('h4', {}, title), rows.length ? h('div', { class: 'scroll-x' }, h('table', { class: 'heat' },
      h('thead', {}, h('tr', {}, h('th'), cols.map((c) => h('th', { scope: 'col' }, colLabel(c))))),
      h('tbody', {}, rows.map((r) => h('tr', {}, h('th', { scope: 'row' }, rowLabel(r)), cols.map((c) => td(r, c)))))))
      : muted(t('none')));
  };
  const hours = [...Array(24).keys()];
  return [
    grid(t('heat_building'), buildings, categories, (b) => t('building_n', b), (c) => label('categories', c),
      (b, c) => byBuilding.get(`${b}|${c}`) ?? 0,
      (b, c) => ({ key: `b|${b}|${c}`, attrs: { 'data-building': b, 'data-category': c }, query: { building: b, category: c },
        title: `${t('building_n', b)} · ${label('categories', c)}` }), incidentAt),
    grid(t('heat_hour'), [1, 2, 3, 4, 5, 6, 7], hours, (w) => WEEKDAYS[lang][w - 1], String,
      (w, hr) => byHour.get(`${w}|${hr}`) ?? 0,
      (w, hr) => ({ key: `h|${w}|${hr}`, attrs: { 'data-weekday': w, 'data-hour': hr }, query: { hour_of_week: (w - 1) * 24 + hr },
        title: `${WEEKDAYS[lang][w - 1]} ${hr}:00` })),
  ];
}

function kpisView() {
  const body = h('div');
  const csv = h('button', { type: 'button', 'data-testid': 'kpis-csv', onclick: (e) => busy(e.currentTarget, downloadCsv) }, t('kpi_csv'));
  const num = (x, digits) => (x == null ? null : Number(x).toFixed(digits));
  mount([rangeBar(csv), body], async () => {
    const k = await api('/api/v1/kpis', { query: rangeQuery(st.range) });
    body.replaceChildren(
      section(t('kpi_tech'), 'kpi-technicians', table(
        [t('name'), t('kpi_assigned'), t('kpi_completed'), t('kpi_resp_on_time'), t('kpi_res_on_time'), t('eff_rework'), t('kpi_satisfaction'), t('kpi_score')],
        (k.technicians ?? []).map((x) => row([x.name, x.assigned, x.completed, pct(x.response_on_time), pct(x.resolution_on_time),
          pct(x.rework_rate), num(x.satisfaction, 2), num(x.score, 1)], { 'data-testid': 'kpi-tech-row', 'data-id': x.user_id })))),
      section(t('kpi_agents'), 'kpi-agents', table(
        [t('name'), t('kpi_registered'), t('kpi_median_assign'), t('kpi_visits'), t('kpi_satisfaction'), t('kpi_score')],
        (k.agents ?? []).map((x) => row([x.name, x.registered, fmtDuration(x.median_assign_ms), x.return_visits,
          num(x.satisfaction, 2), num(x.score, 1)], { 'data-testid': 'kpi-agent-row', 'data-id': x.user_id })))));
  });
}

// A plain link cannot carry the bearer header: fetch the CSV and save it through a Blob URL.
// The KPIs as the server names them (考核_<project>_<period>.csv).
const downloadCsv = () => saveFile(api('/api/v1/kpis', { query: { ...rangeQuery(st.range), format: 'csv' }, raw: true }), 'kpis.csv');

// ---- start

startPage({ chrome, route, showLogin, signedIn: () => !!st.me });
startSlaTicker();
boot();
