// The desk's 事件 (#incidents): complaint surges the server answered as one incident
// (docs/incidents.md), open ones first; an incident (#incidents/<number>) with its place, level
// and member orders (each still its household's own, closed by its owner), and 处理完毕 (resolve:
// it takes no more reports). `openIncidents` feeds the tab's badge and the banner above every view.
import { addStrings, api, busy, fmtTime, h, label, muted, place, statusBadge, t, table, toast } from '/assets/common.js';

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

// A line per open incident, above every view of the desk.
export function incidentBanner(el, rows) {
  el.hidden = !rows.length;
  if (!rows.length) return el.replaceChildren();
  const what = rows.slice(0, 3).map((i) => `${incidentPlace(i)} ${category(i.category)}`).join(';') + (rows.length > 3 ? '…' : '');
  el.replaceChildren(h('span', {}, t('incident_banner', rows.length, what)), ' ',
    h('a', { href: rows.length === 1 ? `#incidents/${rows[0].number}` : '#incidents', 'data-testid': 'incident-banner-link' }, t('incident_view')));
}

export function incidentsView(ctx, arg) {
  if (arg) return incidentView(ctx, arg);
  const all = new URLSearchParams(location.hash.split('?')[1] ?? '').get('state') === 'all';
  const list = h('div', { class: 'stack', 'data-testid': 'incident-list' });
  const chips = h('div', { class: 'chips' }, [['open', 'incidents_open'], ['all', 'incidents_all']].map(([s, key]) =>
    h('a', { href: `#incidents?state=${s}`, class: `chip ${(s === 'all') === all ? 'active' : ''}`, 'data-testid': `incident-filter-${s}` }, t(key))));
  ctx.mount([h('h2', {}, t('incidents_title')), muted(t('incidents_intro')), chips, list], async () => {
    const rows = await api('/api/v1/incidents', { query: { state: all ? 'all' : 'open', limit: 200 } });
    list.replaceChildren(...(rows.length ? rows.map((i) => h('a', {
      href: `#incidents/${i.number}`, class: `card incident ${i.state}`, 'data-testid': 'incident-row', 'data-number': i.number,
    }, h('div', { class: 'row-top' }, h('strong', {}, t('incident_n', i.number), ' · ', incidentPlace(i), ' · ', category(i.category)), levelBadge(i.level)),
    h('div', { class: 'muted' }, t('incident_households', i.households, i.orders), ' · ', t('incident_since', fmtTime(i.first_report_at)), ' · ',
      t(`incident_state_${i.state}`), i.life_safety ? [' · ', h('strong', { class: 'danger-text' }, t('incident_life_safety'))] : null)))
      : [muted(t('incidents_none'))]));
  });
}

function incidentView(ctx, number) {
  const url = `/api/v1/incidents/${encodeURIComponent(number)}`;
  const box = h('div', { class: 'stack', 'data-testid': 'incident' });
  let chosen = ''; // the technician picked, kept when a live update repaints the incident
  const paint = (d) => {
    const resolve = d.state === 'open' && h('button', { type: 'button', class: 'primary', 'data-testid': 'incident-resolve', onclick: (e) => {
      if (!confirm(t('incident_resolve_confirm'))) return;
      busy(e.currentTarget, async () => { paint(await api(`${url}/resolve`, { method: 'POST' })); toast(t('incident_resolved')); ctx.refresh?.(); });
    } }, t('incident_resolve'));
    // One technician for the whole incident: every member still waiting is assigned at once.
    const waiting = d.members.filter((m) => m.status === 'new');
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
    box.replaceChildren(
      h('div', { class: 'card stack' },
        h('div', { class: 'row-top' }, h('h2', {}, t('incident_n', d.number), ' · ', incidentPlace(d)), levelBadge(d.level)),
        h('p', {}, category(d.category), ' · ', t('incident_households', d.households, d.orders), ' · ', t('incident_since', fmtTime(d.first_report_at)),
          ' · ', h('span', { 'data-testid': 'incident-state' }, t(`incident_state_${d.state}`)), d.resolved_at ? ` ${fmtTime(d.resolved_at)}` : '',
          d.life_safety ? [' · ', h('strong', { class: 'danger-text' }, t('incident_life_safety'))] : null),
        assign, resolve && h('div', { class: 'buttons' }, resolve)),
      h('section', { class: 'card' }, h('h3', {}, t('incident_members')),
        table([t('number'), t('location'), t('status'), t('created_at')], d.members.map((m) => h('tr', { 'data-testid': 'incident-member' },
          h('td', {}, h('a', { href: `#order/${encodeURIComponent(m.order_id)}` }, m.number)), h('td', {}, place(m)),
          h('td', {}, statusBadge(m.status)), h('td', {}, fmtTime(m.created_at)))))));
  };
  ctx.mount([h('p', { class: 'back' }, h('a', { href: '#incidents' }, `← ${t('incidents_title')}`)), box], async () => paint(await api(url)));
}
