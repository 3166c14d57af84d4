// The owner's page (served at /h5, small screens first): my requests, report a problem, follow
// its progress, confirm (with a rating) or reject the completed work, ask the assistant. Hash routes: #list, #new,
// #order/<id>, #ask[/<id>]. Live events reload the current view's data in place.
import {
  addStrings, api, busy, errorBox, field, fmtTime, h, label, lang, loadVocab, loginView, newKey, place, rerender, session, startLive,
  startPage, statusBadge, t, toast, viewer, vocab, windowInputs, readWindow, fmtWindow,
} from '/assets/common.js';
import { attachmentsCard, photoPicker } from '/assets/photos.js';

session.use('loopwork.h5');
const $ = (id) => document.getElementById(id);
const view = $('view');
const st = { me: null };
const { mount, reload } = viewer(view);

// The progress steps; each lists the statuses that stand at it.
const STEPS = [['new'], ['assigned'], ['accepted'], ['on_site'], ['in_progress', 'on_hold', 'rework'],
  ['awaiting_confirmation'], ['confirmed', 'auto_confirmed', 'return_visited'], ['closed']];

function chrome() {
  $('logout').hidden = !st.me;
  $('user-name').textContent = st.me?.name ?? '';
  $('lang-switch').textContent = t('lang_other');
}

function showLogin() {
  Object.assign(st, { me: null, load: null });
  chrome();
  Object.assign(view.dataset, { view: 'login', state: 'ready' });
  loginView(view, { accept: (role) => role === 'owner', done: boot, byCode: true });
}

async function boot() {
  if (!session.get()) return showLogin();
  try {
    [st.me, st.desk] = await Promise.all([api('/api/v1/me'), api('/api/v1/settings/service-desk').catch(() => ({})), loadVocab()]);
  } catch (e) {
    if (e.status !== 401) { view.replaceChildren(errorBox(e)); view.dataset.state = 'error'; }
    return;
  }
  chrome();
  startLive(() => reload());
  route();
}

// The service desk's number as a button that dials it (a phone's tel: link).
const callDesk = () => st.desk?.phone && h('a', { href: `tel:${st.desk.phone}`, class: 'button call', 'data-testid': 'h5-call' },
  `${t('call_desk')} ${st.desk.phone}`, st.desk.hours ? h('small', {}, ` · ${st.desk.hours}`) : null);

// A rating's words, and the quick tags an owner taps instead of typing.
const RATING_WORDS = { 1: 'rate_1', 2: 'rate_2', 3: 'rate_3', 4: 'rate_4', 5: 'rate_5' };
const TAGS_GOOD = ['tag_on_time', 'tag_polite', 'tag_fixed', 'tag_tidy', 'tag_fair'];
const TAGS_BAD = ['tag_not_fixed', 'tag_late', 'tag_rude', 'tag_messy'];

const ROUTES = { list: listView, new: newView, order: orderView, ask: askView };

addStrings({
  h5_incident_open: ['{0}共 {1} 户反映了同样的问题,物业已作为一个事件统一处理,请留意进展;维修完成后请确认您自己的工单。',
    '{1} households at {0} reported the same trouble: it is being handled as one incident. Please confirm your own order when it is fixed.'],
  h5_incident_resolved: ['{0}的事件已处理完毕;如您家仍有问题,请在工单中说明。', 'The incident at {0} was resolved; if your home still has the trouble, say so on your order.'],
  h5_notice_title: ['物业通知 · {0} {1}', 'Notice · {0} {1}'], h5_notice_expected: ['预计 {0} 恢复', 'Expected back {0}'],
  h5_notice_updated: ['更新于 {0}', 'Updated {0}'], h5_notice_open: ['处理中', 'In progress'], h5_notice_resolved: ['已恢复', 'Resolved'],
  h5_notice_households: ['已有 {0} 户反映', '{0} households reported'],
  ask_title: ['智能客服', 'Assistant'], ask_open: ['智能客服', 'Ask the assistant'],
  ask_hint: ['您好，我是物业智能客服。可以问我物业费、停水停电、装修、快递、停车等问题，也可以直接描述需要报修的情况；需要人工时点「转人工」。',
    'Hello, I am the property office\'s assistant. Ask about fees, outages, renovation, parcels or parking, or describe what needs repairing; tap "Talk to a person" at any time.'],
  ask_placeholder: ['输入您的问题或报修内容…', 'Type your question or what needs repairing…'], ask_send: ['发送', 'Send'],
  ask_handover: ['转人工', 'Talk to a person'], ask_new: ['新会话', 'New conversation'],
  ask_waiting: ['已转人工客服，客服回复会显示在这里。', 'Handed to a person: their reply will appear here.'],
  ask_answered_state: ['人工客服接待中', 'A person is answering'], ask_closed: ['会话已结束', 'This conversation has ended'],
  ask_more: ['相关问题', 'Related'], ask_not_solved: ['没解决，我要报修', 'Not solved: report a problem'],
  ask_report_title: ['确认后提交报修', 'Check and send'], ask_urgent: ['紧急', 'Urgent'],
  ask_view_order: ['查看进度', 'See progress'], ask_staff: ['客服 {0}', 'Staff: {0}'], ask_bot: ['智能客服', 'Assistant'],
  ask_sent_already: ['已提交', 'Sent'], ask_conversation: ['咨询记录', 'Conversation'],
  ask_handover_asked: ['已为您转接人工客服，请稍候。', 'You have been handed to a person; please wait.'],
  ask_handover_unsure: ['这个问题我还不能确定，已为您转接人工客服，请稍候。', 'I am not sure about this one; a person will answer shortly.'],
  ask_report_text: ['看起来需要报修或投诉，请确认下面的信息后提交。', 'This looks like a repair or a complaint: check the details below and send.'],
  ask_report_urgent: ['这可能危及人身或财产安全，请确认后立即提交；情况危急请同时拨打客服热线。', 'This may put people or property at risk: send it now, and call the office if it is dangerous.'],
  ask_filed: ['已为您登记工单 {0}。', 'Registered as {0}.'], ask_you_label: ['我', 'Me'], ask_about: ['关于「{0}」', 'About "{0}"'],
});

function route() {
  if (!st.me) return;
  const [name, arg] = location.hash.slice(1).split('/');
  const current = ROUTES[name] ? name : 'list';
  view.dataset.view = current;
  ROUTES[current](arg && decodeURIComponent(arg));
}


// An incident's notice (停水通知) to the owners it concerns: where, what, the current text, when
// service is expected back, and when it was last updated.
function noticeCard(n) {
  return h('div', { class: `card h5-notice ${n.state}`, 'data-testid': 'h5-notice', 'data-number': n.number },
    h('div', { class: 'row-top' }, h('strong', {}, t('h5_notice_title', n.place_zh, n.category_zh)),
      h('span', { class: `badge ${n.state === 'open' ? 'waiting' : 'st-closed'}` }, t(`h5_notice_${n.state}`))),
    h('p', { 'data-testid': 'h5-notice-body' }, n.body),
    h('div', { class: 'muted' }, [t('h5_notice_households', n.households), n.expected_at && n.state === 'open' && t('h5_notice_expected', fmtTime(n.expected_at)),
      t('h5_notice_updated', fmtTime(n.updated_at ?? n.opened_at))].filter(Boolean).join(' · ')));
}

function listView() {
  const list = h('div', { class: 'h5-list', 'data-testid': 'h5-list' });
  const notices = h('div', { 'data-testid': 'h5-notices' });
  mount([h('div', { class: 'h5-head' }, h('h2', {}, t('my_orders')),
    h('span', { class: 'gap-row' }, h('a', { href: '#ask', class: 'button', 'data-testid': 'h5-ask' }, t('ask_open')),
      h('a', { href: '#new', class: 'button primary', 'data-testid': 'h5-new' }, t('report_new')))), notices, callDesk(), list], async () => {
    const [rows, told] = await Promise.all([api('/api/v1/orders', { query: { limit: 100 } }), api('/api/v1/notices').catch(() => [])]);
    notices.replaceChildren(...told.map(noticeCard));
    rows.sort((a, b) => b.created_at - a.created_at);
    list.replaceChildren(...(rows.length ? rows.map((r) => h('a', { href: `#order/${encodeURIComponent(r.id)}`, class: 'card h5-row', 'data-testid': 'h5-row', 'data-id': r.id },
      h('div', { class: 'row-top' }, h('span', { class: 'number' }, r.number),
        r.status === 'awaiting_confirmation' ? h('span', { class: 'badge waiting', 'data-testid': 'h5-waiting' }, t('h5_waiting_badge')) : statusBadge(r.status)),
      h('div', {}, `${label('kinds', r.kind)} · ${label('categories', r.category)}`),
      r.description && h('div', { class: 'desc-line' }, r.description),
      h('div', { class: 'muted' }, `${place(r)} · ${fmtTime(r.created_at)}`))) : [h('p', { class: 'muted' }, t('no_orders'))]));
  });
}

function newView() {
  const units = st.me.units ?? [];
  // Opened from the assistant's answer (没解决，我要报修): the order is kept with the conversation.
  const fromChat = st.prefillConversation;
  // The unit already has an open order of this category: say so before a second is sent.
  const dup = h('p', { class: 'notice', 'data-testid': 'h5-duplicate', hidden: true });
  // Photos of the problem (the ceiling, the leak), sent once the report is filed.
  const photos = photoPicker({ testid: 'h5-photos-pick' });
  // One key per report: a retry after a lost answer does not file twice.
  const key = newKey();
  const form = h('form', { class: 'card stack', 'data-testid': 'h5-form' },
    field(t('kind'), h('select', { name: 'kind', 'data-testid': 'h5-kind' },
      (vocab.kinds ?? []).filter((k) => ['repair', 'complaint'].includes(k.code)).map((k) => h('option', { value: k.code }, label('kinds', k.code))))),
    field(t('category'), h('select', { name: 'category', 'data-testid': 'h5-category' },
      (vocab.categories ?? []).map((c) => h('option', { value: c.code }, label('categories', c.code))))),
    field(t('unit'), h('select', { name: 'unit', 'data-testid': 'h5-unit' }, units.map((u, i) => h('option', { value: i }, `${t('building_n', u.building)} ${u.unit}`)))),
    field(t('description'), h('textarea', { name: 'description', 'data-testid': 'h5-description', rows: 4, required: true }, st.prefill ?? '')),
    field(t('appt_hint'), windowInputs('appt')),
    photos.node,
    dup,
    units.length ? null : h('p', { class: 'error' }, t('no_units')),
    h('button', { type: 'submit', class: 'primary block', 'data-testid': 'h5-submit', disabled: !units.length }, t('report_submit')));
  const checkDuplicate = async () => {
    const v = Object.fromEntries(new FormData(form));
    const u = units[Number(v.unit)];
    if (!u || !v.category) return;
    const open = await api('/api/v1/orders', { query: { status: 'open', project: u.project, building: u.building, unit: u.unit, category: v.category, limit: 5 } }).catch(() => []);
    dup.replaceChildren(t('h5_duplicate'), ' ', ...open.map((o) => h('a', { href: `#order/${encodeURIComponent(o.id)}`, class: 'gap' }, o.number)));
    dup.hidden = !open.length;
  };
  form.addEventListener('change', checkDuplicate);
  queueMicrotask(checkDuplicate);
  form.addEventListener('submit', (e) => {
    e.preventDefault();
    busy(e.submitter, async () => {
      const v = Object.fromEntries(new FormData(form));
      const u = units[Number(v.unit)];
      const r = await api('/api/v1/orders', { method: 'POST', idempotencyKey: key, body: { kind: v.kind, category: v.category, channel: 'app',
        project: u.project, building: u.building, unit: u.unit, description: v.description.trim(),
        appointment: readWindow(form, 'appt') ?? undefined, conversation: fromChat ?? undefined } });
      toast(t('reported_as', r.number));
      // The photos follow in the background, the order's page open meanwhile.
      if (photos.count()) photos.send(r.id, r.number);
      location.hash = `#order/${encodeURIComponent(r.id)}`;
    });
  });
  st.prefill = null;
  st.prefillConversation = null;
  mount([h('p', { class: 'back' }, h('a', { href: '#list' }, `← ${t('my_orders')}`)), h('h2', {}, t('report_new')), form], null);
}

// The assistant (智能客服): the owner writes; the bot answers from the knowledge base, proposes
// a report to confirm, or hands over to a person, whose replies appear here live. #ask continues
// the latest open conversation; #ask/<id> shows one (an order's 咨询记录).
function askView(arg) {
  let c = null; // the conversation shown
  let fresh = false; // "new conversation" pressed: the next message begins one
  const forms = new Map(); // report forms by message seq, kept across live repaints
  const log = h('div', { class: 'chat', 'data-testid': 'h5-chat', 'aria-live': 'polite' });
  const status = h('p', { class: 'muted chat-state', 'data-testid': 'h5-ask-state' });
  const input = h('textarea', { name: 'text', rows: 2, maxlength: 1000, 'data-testid': 'h5-ask-input', placeholder: t('ask_placeholder'), 'aria-label': t('ask_placeholder') });
  const handover = h('button', { type: 'button', 'data-testid': 'h5-ask-handover' }, t('ask_handover'));
  const restart = h('button', { type: 'button', class: 'link', 'data-testid': 'h5-ask-restart' }, t('ask_new'));
  const composer = h('form', { class: 'composer', 'data-testid': 'h5-ask-form' }, input,
    h('div', { class: 'composer-actions' }, handover, h('button', { type: 'submit', class: 'primary', 'data-testid': 'h5-ask-send' }, t('ask_send'))));
  const units = st.me.units ?? [];

  const bubble = (who, cls, ...body) => h('div', { class: `msg ${cls}`, 'data-testid': `h5-msg-${cls}` }, h('div', { class: 'who' }, who), ...body);
  const lastReport = () => [...(c?.messages ?? [])].reverse().find((m) => m.turn?.type === 'report')?.seq;

  function reportForm(m) {
    const p = m.turn.proposal;
    // A proposal before the conversation's order was filed is that order; a later one (a second
    // problem, an urgent one) is sent as an order of its own.
    const filedAt = c.messages.find((x) => x.turn?.type === 'filed')?.seq;
    if (filedAt != null && m.seq < filedAt) return h('p', { class: 'muted' }, t('ask_sent_already'));
    if (c.state === 'closed' || m.seq !== lastReport()) return null;
    if (forms.has(m.seq)) return forms.get(m.seq);
    const unitIndex = Math.max(0, units.findIndex((u) => p.unit && u.unit === p.unit.unit && u.building === p.unit.building && u.project === p.unit.project));
    const form = h('form', { class: 'stack proposal', 'data-testid': 'h5-ask-report' },
      h('h4', {}, t('ask_report_title')),
      field(t('kind'), h('select', { name: 'kind', 'data-testid': 'h5-ask-kind' }, ['repair', 'complaint'].map((k) => h('option', { value: k, selected: k === p.kind }, label('kinds', k))))),
      field(t('category'), h('select', { name: 'category', 'data-testid': 'h5-ask-category' },
        (vocab.categories ?? []).map((x) => h('option', { value: x.code, selected: x.code === p.category }, label('categories', x.code))))),
      field(t('unit'), h('select', { name: 'unit', 'data-testid': 'h5-ask-unit' }, units.map((u, i) => h('option', { value: i, selected: i === unitIndex }, `${t('building_n', u.building)} ${u.unit}`)))),
      field(t('description'), h('textarea', { name: 'description', rows: 3, required: true, 'data-testid': 'h5-ask-description' }, p.description)),
      units.length ? null : h('p', { class: 'error' }, t('no_units')),
      h('button', { type: 'submit', class: `${p.urgent ? 'danger' : 'primary'} block`, 'data-testid': 'h5-ask-submit', disabled: !units.length }, t('report_submit')));
    // One key per proposal: a retry after a lost answer does not file twice.
    const key = `ask-${c.id}-${m.seq}`;
    form.addEventListener('submit', (e) => {
      e.preventDefault();
      busy(e.submitter, async () => {
        const v = Object.fromEntries(new FormData(form));
        const u = units[Number(v.unit)];
        const linked = !c.order_id;
        const r = await api('/api/v1/orders', { method: 'POST', idempotencyKey: key, body: { kind: v.kind, category: v.category, channel: 'app',
          project: u.project, building: u.building, unit: u.unit, description: v.description.trim(), conversation: linked ? c.id : undefined } });
        toast(t('reported_as', r.number));
        forms.delete(m.seq);
        if (linked) await load();
        else location.hash = `#order/${encodeURIComponent(r.id)}`;
      });
    });
    forms.set(m.seq, form);
    return form;
  }

  function message(m) {
    if (m.author === 'owner') return bubble(t('ask_you_label'), 'mine', h('p', {}, m.text));
    if (m.author === 'staff') return bubble(t('ask_staff', m.by ?? ''), 'staff', h('p', {}, m.text));
    const turn = m.turn ?? {};
    switch (turn.type) {
      case 'answer': {
        const [first, ...more] = turn.articles ?? [];
        return bubble(t('ask_bot'), 'bot', h('h4', { 'data-testid': 'h5-ask-article' }, t('ask_about', first?.title ?? '')), h('p', { class: 'article' }, first?.text ?? ''),
          more.length > 0 && h('div', { class: 'related' }, h('div', { class: 'muted' }, t('ask_more')),
            more.map((a) => h('details', {}, h('summary', {}, a.title), h('p', {}, a.text)))),
          h('p', {}, h('button', { type: 'button', class: 'link', 'data-testid': 'h5-ask-not-solved', onclick: () => {
            const asked = [...c.messages].reverse().find((x) => x.author === 'owner' && x.seq < m.seq);
            st.prefill = asked?.text ?? '';
            st.prefillConversation = c.order_id || c.state === 'closed' ? null : c.id;
            location.hash = '#new';
          } }, t('ask_not_solved'))));
      }
      case 'report':
        return bubble(t('ask_bot'), turn.proposal?.urgent ? 'bot urgent' : 'bot',
          turn.proposal?.urgent && h('p', { class: 'urgent-line', 'data-testid': 'h5-ask-urgent' }, `${t('ask_urgent')}${turn.proposal.rule ? ` · ${lang === 'en' ? turn.proposal.rule.en : turn.proposal.rule.zh}` : ''}`),
          h('p', {}, t(turn.proposal?.urgent ? 'ask_report_urgent' : 'ask_report_text')),
          turn.proposal?.urgent && callDesk(), reportForm(m));
      case 'handover':
        return bubble(t('ask_bot'), 'bot', h('p', { 'data-testid': 'h5-ask-handed' }, t(turn.reason === 'asked' ? 'ask_handover_asked' : 'ask_handover_unsure')), callDesk());
      case 'filed':
        return bubble(t('ask_bot'), 'bot', h('p', { 'data-testid': 'h5-ask-filed' }, t('ask_filed', turn.number), ' ',
          h('a', { href: `#order/${encodeURIComponent(turn.order)}` }, t('ask_view_order'))));
      default:
        return bubble(t('ask_bot'), 'bot', h('p', {}, m.text));
    }
  }

  function paint() {
    const msgs = c && !fresh ? c.messages : [];
    log.replaceChildren(bubble(t('ask_bot'), 'bot', h('p', {}, t('ask_hint'))), ...msgs.map(message));
    const state = fresh ? 'bot' : c?.state ?? 'bot';
    status.textContent = { waiting: t('ask_waiting'), answered: t('ask_answered_state'), closed: t('ask_closed') }[state] ?? '';
    status.hidden = !status.textContent;
    handover.hidden = !c || fresh || state !== 'bot';
    restart.hidden = !c || fresh;
    composer.hidden = state === 'closed';
    log.lastElementChild?.scrollIntoView?.({ block: 'nearest' });
  }

  async function load() {
    if (arg) c = await api(`/api/v1/assistant/conversations/${encodeURIComponent(arg)}`);
    else if (!fresh) {
      const [latest] = await api('/api/v1/assistant/conversations', { query: { limit: 1 } });
      c = latest && latest.state !== 'closed' ? await api(`/api/v1/assistant/conversations/${encodeURIComponent(latest.id)}`) : null;
    }
    paint();
  }

  composer.addEventListener('submit', (e) => {
    e.preventDefault();
    const text = input.value.trim();
    if (!text) return input.focus();
    busy(e.submitter, async () => {
      c = await api('/api/v1/assistant/messages', { method: 'POST', body: { text, conversation: fresh || !c ? undefined : c.id } });
      fresh = false;
      arg = c.id;
      input.value = '';
      paint();
    });
  });
  input.addEventListener('keydown', (e) => { if (e.key === 'Enter' && !e.shiftKey && !e.isComposing) { e.preventDefault(); composer.requestSubmit(); } });
  handover.addEventListener('click', (e) => busy(e.currentTarget, async () => {
    c = await api(`/api/v1/assistant/conversations/${encodeURIComponent(c.id)}/handover`, { method: 'POST' });
    paint();
  }));
  restart.addEventListener('click', () => { fresh = true; arg = null; forms.clear(); paint(); input.focus(); });

  // A person's reply written through another server process has no live event here: while a
  // person has the conversation, it is read again every 20 seconds.
  clearInterval(st.askPoll);
  st.askPoll = setInterval(() => {
    if (view.dataset.view !== 'ask') clearInterval(st.askPoll);
    else if (c && !fresh && ['waiting', 'answered'].includes(c.state)) reload();
  }, 20_000);
  mount([h('div', { class: 'h5-head' }, h('p', { class: 'back' }, h('a', { href: '#list' }, `← ${t('my_orders')}`)), restart),
    h('h2', {}, t('ask_title')), log, status, composer], load);
}

function promise(d) {
  const c = d.countdown;
  if (!c || !['new', 'assigned', 'accepted', 'on_site', 'in_progress', 'rework'].includes(d.status)) return null;
  const parts = [c.responded_at == null && c.response_due && t('h5_respond_by', fmtTime(c.response_due)),
    c.resolution_due && t('h5_resolve_by', fmtTime(c.resolution_due))].filter(Boolean);
  return parts.length ? h('p', { class: 'muted', 'data-testid': 'h5-promise' }, parts.join(lang === 'en' ? '; ' : ';')) : null;
}

function orderView(id) {
  const url = `/api/v1/orders/${encodeURIComponent(id)}`;
  const box = h('div', { 'data-testid': 'h5-order', 'data-id': id });
  let d = null;
  let notice = null; // the notice of the order's incident, if it has one
  let rating = 0; // the stars chosen, kept across live repaints
  let cancelArmed = false;
  const paint = () => rerender(box, build);
  const act = (body, button) => busy(button, async () => {
    d = await api(`${url}/actions`, { method: 'POST', body });
    button.form?.reset();
    rating = 0;
    tags = new Set();
    paint();
    toast(t('thanks'));
  });

  let tags = new Set(); // quick tags tapped, kept across live repaints
  function stars() {
    const words = h('span', { class: 'rating-words', 'data-testid': 'h5-rating-words' }, rating ? t(RATING_WORDS[rating]) : t('choose_rating'));
    const tagBox = h('div', { class: 'chips', 'data-testid': 'h5-tags' });
    const paintTags = () => tagBox.replaceChildren(...(rating ? (rating >= 4 ? TAGS_GOOD : TAGS_BAD) : []).map((k) => h('button', {
      type: 'button', class: `chip ${tags.has(k) ? 'active' : ''}`, 'data-testid': 'h5-tag', 'aria-pressed': String(tags.has(k)),
      onclick: () => { if (tags.has(k)) tags.delete(k); else tags.add(k); paintTags(); } }, t(k))));
    const pickStar = (n) => {
      if ((n >= 4) !== (rating >= 4)) tags = new Set();
      rating = n;
      for (const b of box.querySelectorAll('.stars button')) b.setAttribute('aria-pressed', String(Number(b.dataset.n) <= n));
      words.textContent = t(RATING_WORDS[n]);
      paintTags();
    };
    paintTags();
    return [h('div', { class: 'stars', role: 'group', 'aria-label': t('rating') }, [1, 2, 3, 4, 5].map((n) => h('button', {
      type: 'button', 'data-testid': `h5-star-${n}`, 'data-n': n, 'aria-pressed': String(n <= rating), 'aria-label': `${t('stars_n', n)} ${t(RATING_WORDS[n])}`, onclick: () => pickStar(n),
    }, '★')), words), tagBox];
  }

  function confirmForms() {
    const confirm = h('form', { class: 'card stack', 'data-testid': 'h5-confirm-form' }, h('h3', {}, t('confirm_title')), stars(),
      h('textarea', { name: 'comment', 'data-testid': 'h5-comment', rows: 2, placeholder: t('comment'), 'aria-label': t('comment') }),
      h('button', { type: 'submit', class: 'primary block', 'data-testid': 'h5-confirm' }, t('confirm_submit')));
    confirm.addEventListener('submit', (e) => {
      e.preventDefault();
      if (!rating) return toast(t('choose_rating'), 'error');
      // The tags tapped lead the comment, as the owner's own words.
      const text = [[...tags].map((k) => t(k)).join('、'), confirm.elements.comment.value.trim()].filter(Boolean).join(';');
      act({ action: 'confirm', rating, text: text || undefined }, e.submitter);
    });
    const reject = h('form', { class: 'card stack', 'data-testid': 'h5-reject-form' }, h('h3', {}, t('reject_title')),
      h('textarea', { name: 'reason', 'data-testid': 'h5-reject-reason', rows: 2, placeholder: t('reject_reason'), 'aria-label': t('reject_reason') }),
      h('button', { type: 'submit', class: 'danger block', 'data-testid': 'h5-reject' }, t('reject_submit')));
    reject.addEventListener('submit', (e) => {
      e.preventDefault();
      const text = reject.elements.reason.value.trim();
      if (!text) { reject.elements.reason.focus(); return toast(t('reason_required'), 'error'); }
      act({ action: 'reject', text }, e.submitter);
    });
    return [d.actions.includes('confirm') && confirm, d.actions.includes('reject') && reject];
  }

  function build() {
    const at = STEPS.findIndex((codes) => codes.includes(d.status));
    const actions = d.actions ?? [];
    return [
      h('div', { class: 'card' },
        h('div', { class: 'row-top' }, h('h2', { class: 'number', 'data-testid': 'h5-number' }, d.number),
          statusBadge(d.status, { 'data-testid': 'h5-status' })),
        d.status === 'cancelled' ? h('p', { class: 'muted' }, label('statuses', 'cancelled'))
          : h('ol', { class: 'steps', 'data-testid': 'h5-steps', 'aria-label': t('progress') }, STEPS.map((codes, i) => h('li', {
            class: i < at ? 'done' : i === at ? 'current' : null, 'aria-current': i === at ? 'step' : null,
          }, i ? label('statuses', codes[0]) : t('step_reported')))),
        h('dl', { class: 'facts' },
          [['kind', label('kinds', d.kind)], ['category', label('categories', d.category)], ['location', place(d)],
            ['assignee', d.assignee_name], d.appointment && ['appointment', fmtWindow(d.appointment)], ['created_at', fmtTime(d.created_at)]]
            .filter(Boolean)
            .flatMap(([k, v]) => [h('dt', {}, t(k)), h('dd', {}, v ?? '—')])),
        h('p', { class: 'description' }, d.description ?? ''),
        d.incident && d.incident.state !== 'merged' && h('p', { class: 'notice', 'data-testid': 'h5-incident' },
          t(d.incident.state === 'open' ? 'h5_incident_open' : 'h5_incident_resolved', d.incident.place_zh, d.incident.households)),
        notice && noticeCard(notice),
        // Why it waits, and what happens if the owner does not answer.
        d.status === 'on_hold' && h('p', { class: 'notice', 'data-testid': 'h5-hold' },
          t('h5_on_hold', d.hold_reason ? label('hold_reasons', d.hold_reason) : label('statuses', 'on_hold'))),
        d.status === 'awaiting_confirmation' && d.auto_confirm_at != null && h('p', { class: 'notice', 'data-testid': 'h5-auto-confirm' },
          t('h5_waiting_you', fmtTime(d.auto_confirm_at))),
        // The promise: when someone answers and when it should be done (the organization's time limits).
        promise(d)),
      callDesk(),
      (actions.includes('confirm') || actions.includes('reject')) && confirmForms(),
      d.rating != null && h('div', { class: 'card' }, h('h3', {}, t('rating')),
        h('p', { class: 'stars-static' }, '★'.repeat(d.rating) + '☆'.repeat(5 - d.rating)), d.rating_comment && h('p', {}, d.rating_comment)),
      attachmentsCard(d, { who: (a) => a.who ?? (a.author === d.reporter ? t('photo_by_me') : label('roles', 'technician')), testid: 'h5-photos',
        onChanged: (next) => { d = next; paint(); } }),
      (d.notes ?? []).length > 0 && h('div', { class: 'card' }, h('h3', {}, t('notes')),
        h('ul', { class: 'notes' }, d.notes.map((n) => h('li', {}, h('div', { class: 'muted' }, `${n.who ?? ''} ${fmtTime(n.at)}`), h('div', {}, n.text))))),
      d.conversation && h('p', {}, h('a', { href: `#ask/${encodeURIComponent(d.conversation)}`, 'data-testid': 'h5-order-conversation' }, t('ask_conversation'))),
      actions.includes('cancel') && h('p', {}, h('button', { type: 'button', class: 'danger', 'data-testid': 'h5-cancel',
        onclick: (e) => { if (cancelArmed) act({ action: 'cancel' }, e.currentTarget); else { cancelArmed = true; paint(); } },
      }, t(cancelArmed ? 'cancel_confirm' : 'cancel_order'))),
    ];
  }

  mount([h('p', { class: 'back' }, h('a', { href: '#list' }, `← ${t('my_orders')}`)), box], async () => {
    d = await api(url);
    notice = d.incident ? (await api('/api/v1/notices').catch(() => [])).find((n) => n.number === d.incident.number) ?? null : null;
    paint();
  });
}

startPage({ chrome, route, showLogin, signedIn: () => !!st.me });
boot();
