// The desk's 在线咨询 (#chats): owners' conversations with the assistant, those handed to a
// person first; a conversation (#chats/<id>) with its transcript, a reply, closing, and 登记工单
// (the registration form filled from it, the order kept with the conversation); and the
// knowledge base (#chats/kb), which supervisors, managers and administrators edit.
import { addStrings, api, busy, field, fmtTime, h, label, muted, t, toast } from '/assets/common.js';

addStrings({
  tab_chats: ['在线咨询', 'Conversations'], chats_title: ['在线咨询', 'Owners\' conversations'],
  chat_state_waiting: ['待人工', 'Waiting for a person'], chat_state_answered: ['人工接待中', 'With a person'],
  chat_state_bot: ['智能客服中', 'With the assistant'], chat_state_closed: ['已结束', 'Ended'], chat_all: ['全部', 'All'],
  chat_waiting_since: ['等待 {0}', 'waiting since {0}'], chat_none: ['暂无会话', 'No conversation'],
  chat_owner: ['业主', 'Owner'], chat_bot: ['智能客服', 'Assistant'], chat_staff: ['客服 {0}', 'Staff: {0}'],
  chat_reply: ['回复业主', 'Reply to the owner'], chat_send: ['发送', 'Send'], chat_close: ['结束会话', 'End the conversation'],
  chat_register: ['登记工单', 'Register an order'], chat_order: ['已生成工单', 'Order'],
  chat_turn_answer: ['回答:{0}', 'Answered: {0}'], chat_turn_report: ['建议登记:{0}', 'Proposed a report: {0}'],
  chat_turn_handover_asked: ['业主要求转人工', 'The owner asked for a person'], chat_turn_handover_unsure: ['无法确定,已转人工', 'Not sure: handed to a person'],
  chat_turn_filed: ['已登记 {0}', 'Registered {0}'], chat_transcript: ['咨询记录', 'Conversation'], chat_urgent: ['紧急', 'urgent'], chat_from: ['来自在线咨询', 'From a conversation'],
  kb_title: ['知识库', 'Knowledge base'], kb_intro: ['业主向智能客服提问时,从已发布的文章中回答;关键词写业主常用的说法。', 'The assistant answers owners from the published articles; keywords are the words owners use.'],
  kb_new: ['新建文章', 'New article'], kb_title_field: ['标题', 'Title'], kb_keywords: ['关键词(逗号分隔)', 'Keywords (comma-separated)'],
  kb_body: ['正文', 'Text'], kb_published: ['已发布(回答业主)', 'Published (answers owners)'], kb_draft: ['草稿', 'Draft'],
  kb_save: ['保存', 'Save'], kb_delete: ['删除', 'Delete'], kb_delete_confirm: ['确定删除这篇文章?', 'Delete this article?'],
  kb_saved: ['已保存', 'Saved'], kb_deleted: ['已删除', 'Deleted'], kb_readonly: ['(只读:主管、经理和管理员可以编辑)', '(read only: supervisors, managers and administrators edit)'],
});

const STATES = ['waiting', 'answered', 'bot', 'closed'];
const EDITORS = ['supervisor', 'manager', 'admin'];

// The number of conversations waiting for a person, for the tab's badge.
export async function waitingCount() {
  const rows = await api('/api/v1/assistant/conversations', { query: { state: 'waiting', limit: 100 } });
  return rows.length;
}

// What the bot did, in a line for the desk.
function turnLine(m) {
  const turn = m.turn ?? {};
  switch (turn.type) {
    case 'answer': return t('chat_turn_answer', turn.articles?.[0]?.title ?? '');
    case 'report': return t('chat_turn_report', [label('kinds', turn.proposal.kind), label('categories', turn.proposal.category),
      turn.proposal.urgent ? t('chat_urgent') : null].filter(Boolean).join(' · '));
    case 'handover': return t(turn.reason === 'asked' ? 'chat_turn_handover_asked' : 'chat_turn_handover_unsure');
    case 'filed': return t('chat_turn_filed', turn.number);
    default: return m.text;
  }
}

const stateBadge = (state) => h('span', { class: `badge ${state === 'waiting' ? 'waiting' : ''}`, 'data-testid': 'chat-state' }, t(`chat_state_${state}`));

export function chatsView(ctx, arg) {
  if (arg === 'kb') return knowledgeView(ctx);
  if (arg) return conversationView(ctx, arg);
  const params = new URLSearchParams(location.hash.split('?')[1] ?? '');
  const state = STATES.includes(params.get('state')) ? params.get('state') : params.has('state') ? '' : 'waiting';
  const list = h('div', { class: 'stack', 'data-testid': 'chat-list' });
  const chips = h('div', { class: 'chips' }, [...STATES, ''].map((s) => h('a', {
    href: `#chats?state=${s}`, class: `chip ${s === state ? 'active' : ''}`, 'data-testid': `chat-filter-${s || 'all'}`,
  }, s ? t(`chat_state_${s}`) : t('chat_all'))));
  ctx.mount([h('div', { class: 'h5-head' }, h('h2', {}, t('chats_title')), h('a', { href: '#chats/kb', class: 'button', 'data-testid': 'chat-kb' }, t('kb_title'))),
    chips, list], async () => {
    const rows = await api('/api/v1/assistant/conversations', { query: { state: state || undefined, limit: 100 } });
    list.replaceChildren(...(rows.length ? rows.map((c) => h('a', { href: `#chats/${encodeURIComponent(c.id)}`, class: 'card h5-row', 'data-testid': 'chat-row', 'data-id': c.id },
      h('div', { class: 'row-top' }, h('strong', {}, c.unit ?? t('chat_owner')), stateBadge(c.state)),
      c.last && h('div', { class: 'desc-line' }, c.last.author === 'bot' ? turnLine(c.last) : c.last.text),
      h('div', { class: 'muted' }, c.state === 'waiting' && c.waiting_since ? t('chat_waiting_since', fmtTime(c.waiting_since)) : fmtTime(c.updated_at)))) : [muted(t('chat_none'))]));
  });
}

function conversationView(ctx, id) {
  const url = `/api/v1/assistant/conversations/${encodeURIComponent(id)}`;
  const box = h('div', { class: 'chat-pane', 'data-testid': 'chat-detail', 'data-id': id });
  const reply = h('textarea', { name: 'text', rows: 3, maxlength: 1000, 'data-testid': 'chat-reply', 'aria-label': t('chat_reply'), placeholder: t('chat_reply') });
  const form = h('form', { class: 'card stack chat-pane', 'data-testid': 'chat-reply-form' }, reply,
    h('div', { class: 'buttons' }, h('button', { type: 'submit', class: 'primary', 'data-testid': 'chat-send' }, t('chat_send'))));
  let c = null;
  const bubble = (m) => {
    const who = m.author === 'owner' ? t('chat_owner') : m.author === 'staff' ? t('chat_staff', m.by ?? '') : t('chat_bot');
    const urgent = m.turn?.type === 'report' && m.turn.proposal?.urgent;
    return h('div', { class: `msg ${m.author === 'owner' ? '' : 'mine'} ${m.author} ${urgent ? 'urgent' : ''}`, 'data-testid': `chat-msg-${m.author}` },
      h('div', { class: 'who' }, `${who} · ${fmtTime(m.at)}`),
      h('p', {}, m.author === 'bot' ? turnLine(m) : m.text),
      m.turn?.type === 'filed' && h('a', { href: `#order/${encodeURIComponent(m.turn.order)}` }, m.turn.number));
  };
  const paint = () => {
    const proposal = [...c.messages].reverse().find((m) => m.turn?.type === 'report')?.turn.proposal;
    const lastOwner = [...c.messages].reverse().find((m) => m.author === 'owner');
    box.replaceChildren(
      h('div', { class: 'row-top' }, h('h2', {}, c.unit ?? t('chat_owner')), stateBadge(c.state)),
      h('div', { class: 'chat' }, c.messages.map(bubble)),
      h('div', { class: 'buttons' },
        c.order_id ? h('a', { href: `#order/${encodeURIComponent(c.order_id)}`, class: 'button', 'data-testid': 'chat-order' }, t('chat_order'))
          : c.state !== 'closed' && h('button', { type: 'button', 'data-testid': 'chat-register', onclick: () => ctx.register({
            conversation: c.id, channel: 'app', kind: proposal?.kind ?? 'repair', category: proposal?.category ?? '',
            project: proposal?.unit?.project ?? c.project ?? '', building: proposal?.unit?.building ?? c.building ?? '', unit: proposal?.unit?.unit ?? c.unit ?? '',
            description: proposal?.description ?? lastOwner?.text ?? '' }) }, t('chat_register')),
        c.state !== 'closed' && h('button', { type: 'button', class: 'danger', 'data-testid': 'chat-close', onclick: (e) => busy(e.currentTarget, async () => {
          c = await api(`${url}/close`, { method: 'POST' });
          paint();
        }) }, t('chat_close'))));
    form.hidden = c.state === 'closed';
  };
  form.addEventListener('submit', (e) => {
    e.preventDefault();
    const text = reply.value.trim();
    if (!text) return reply.focus();
    busy(e.submitter, async () => {
      c = await api(`${url}/replies`, { method: 'POST', body: { text } });
      reply.value = '';
      paint();
    });
  });
  ctx.mount([h('p', { class: 'back' }, h('a', { href: '#chats' }, `← ${t('chats_title')}`)), box, form], async () => { c = await api(url); paint(); });
}

function knowledgeView(ctx) {
  const editor = EDITORS.includes(ctx.me.role);
  const list = h('div', { class: 'stack', 'data-testid': 'kb-list' });
  const articleForm = (a) => {
    const form = h('form', { class: 'card stack', 'data-testid': a ? 'kb-article' : 'kb-new', 'data-id': a?.id },
      field(t('kb_title_field'), h('input', { name: 'title', value: a?.title ?? '', required: true, maxlength: 100, disabled: !editor, 'data-testid': 'kb-title' })),
      field(t('kb_keywords'), h('input', { name: 'keywords', value: (a?.keywords ?? []).join(', '), disabled: !editor, 'data-testid': 'kb-keywords' })),
      field(t('kb_body'), h('textarea', { name: 'body', rows: 4, required: true, maxlength: 5000, disabled: !editor, 'data-testid': 'kb-body' }, a?.body ?? '')),
      h('label', { class: 'inline' }, h('input', { type: 'checkbox', name: 'published', checked: a ? a.published : true, disabled: !editor, 'data-testid': 'kb-published' }), ` ${t('kb_published')}`),
      editor && h('div', { class: 'buttons' }, h('button', { type: 'submit', class: 'primary', 'data-testid': 'kb-save' }, t(a ? 'kb_save' : 'kb_new')),
        a && h('button', { type: 'button', class: 'danger', 'data-testid': 'kb-delete', onclick: (e) => {
          if (!confirm(t('kb_delete_confirm'))) return;
          busy(e.currentTarget, async () => { await api(`/api/v1/knowledge/${encodeURIComponent(a.id)}`, { method: 'DELETE' }); toast(t('kb_deleted')); ctx.reload(); });
        } }, t('kb_delete'))));
    form.addEventListener('submit', (e) => {
      e.preventDefault();
      const v = new FormData(form);
      const body = { title: v.get('title').trim(), body: v.get('body').trim(), published: v.get('published') === 'on',
        keywords: v.get('keywords').split(/[,，、\s]+/).map((k) => k.trim()).filter(Boolean) };
      busy(e.submitter, async () => {
        await api(a ? `/api/v1/knowledge/${encodeURIComponent(a.id)}` : '/api/v1/knowledge', { method: a ? 'PUT' : 'POST', body });
        toast(t('kb_saved'));
        ctx.reload();
      });
    });
    return form;
  };
  ctx.mount([h('p', { class: 'back' }, h('a', { href: '#chats' }, `← ${t('chats_title')}`)),
    h('h2', {}, t('kb_title'), editor ? null : h('small', { class: 'muted' }, ` ${t('kb_readonly')}`)), muted(t('kb_intro')),
    editor && h('details', { class: 'card' }, h('summary', { 'data-testid': 'kb-new-open' }, t('kb_new')), articleForm(null)), list], async () => {
    const rows = await api('/api/v1/knowledge');
    list.replaceChildren(...rows.map((a) => h('details', { class: 'card', 'data-testid': 'kb-row' },
      h('summary', {}, h('strong', {}, a.title), ' ', a.published ? null : h('span', { class: 'badge' }, t('kb_draft'))), articleForm(a))));
  });
}
