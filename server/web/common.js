// Shared by the desk (/) and the owner's page (/h5): language, API calls, live updates,
// formatting and a small DOM builder. Plain ES2020 modules, no framework.

const LANG_KEY = 'loopwork.lang';
export let lang = localStorage.getItem(LANG_KEY) === 'en' ? 'en' : 'zh';

// key: [zh-CN, English]; {0}, {1} are arguments of t().
const STRINGS = {
  app_title: ['Loopwork 工单闭环', 'Loopwork work orders'], h5_title: ['物业报修', 'Property service'],
  lang_other: ['English', '中文'], logout: ['退出', 'Log out'],
  login_title: ['登录', 'Log in'], login_user: ['账号', 'Login'], login_password: ['密码', 'Password'],
  login_submit: ['登录', 'Log in'], login_by_code: ['短信验证码登录', 'Sign in with a text-message code'],
  login_by_password: ['账号密码登录', 'Sign in with a password'], send_code: ['获取验证码', 'Send code'], resend_in: ['{0} 秒后重发', 'Again in {0} s'],
  sms_code: ['验证码', 'Code'], mobile: ['手机号码', 'Mobile number'], code_sent: ['验证码已发送', 'Code sent'], phone_first: ['请先填写手机号码', 'Enter your phone number first'], login_wrong_role: ['此页面不适用于该账号的角色', 'This page is not for this account\'s role'],
  use_h5: ['业主请使用 /h5 页面', 'Owners please use /h5'], network_error: ['网络连接失败,请检查网络;页面保留上次的数据,稍后自动重试', 'Cannot reach the server: check the connection. The last data stays on the page; retrying shortly'],
  tab_queue: ['工单队列', 'Queue'], tab_register: ['登记', 'Register'], tab_notifications: ['通知', 'Notifications'],
  tab_visits: ['回访', 'Return visits'], tab_dashboard: ['数据看板', 'Dashboard'], tab_kpis: ['考核', 'KPIs'],
  all: ['全部', 'All'], open_orders: ['未完结', 'Open'], not_cancelled: ['未取消', 'Not cancelled'], overdue_only: ['仅超时', 'Overdue only'],
  search: ['搜索', 'Search'], none: ['无', 'None'], yes: ['是', 'Yes'], no: ['否', 'No'],
  kind: ['类型', 'Kind'], category: ['类别', 'Category'], grade: ['等级', 'Grade'], channel: ['渠道', 'Channel'],
  status: ['状态', 'Status'], project: ['项目', 'Project'], building: ['楼栋', 'Building'], unit: ['房号', 'Unit'],
  location: ['位置', 'Location'], area: ['公共区域', 'Common area'], area_hint: ['如:3栋电梯厅', 'e.g. lobby of building 3'], assignee: ['维修工', 'Technician'], technician: ['维修工', 'Technician'],
  created_at: ['登记时间', 'Registered'], occurred_at: ['发生时间', 'Occurred'], deadline: ['时限', 'Deadline'],
  number: ['单号', 'Number'], description: ['描述', 'Description'], reporter: ['报事人', 'Reporter'],
  caller: ['来电人', 'Caller'], caller_name: ['来电人姓名', 'Caller name'], caller_phone: ['来电电话', 'Caller phone'],
  reopen_count: ['返工次数', 'Reopened'], return_visit: ['需回访', 'Return visit due'],
  building_n: ['{0}栋', 'Bldg {0}'], selected_n: ['已选 {0} 单', '{0} selected'],
  choose_tech: ['选择维修工…', 'Choose a technician…'], tech_option: ['{0}({1} 单,{2})', '{0} ({1} open, {2})'],
  appointment: ['预约时间', 'Preferred time'], appt_today_pm: ['今天下午', 'This afternoon'], appt_tomorrow_am: ['明天上午', 'Tomorrow morning'],
  appt_tomorrow_pm: ['明天下午', 'Tomorrow afternoon'], appt_set: ['保存预约时间', 'Save the time'], appt_clear: ['清除', 'Clear'],
  appt_hint: ['方便上门的时间(可选)', 'When someone may come (optional)'],
  trade_fits: ['擅长{0}', 'Trade: {0}'], trade_others: ['其他维修工', 'Other technicians'],
  on_duty: ['在岗', 'on duty'], off_duty: ['离岗', 'off duty'], bulk_assign: ['批量派单', 'Assign selected'],
  bulk_result: ['派单成功 {0} 单,失败 {1} 单', '{0} assigned, {1} failed'], no_orders: ['暂无工单', 'No orders'],
  register_title: ['登记报修/投诉', 'Register a request'], register_submit: ['登记', 'Register'],
  registered: ['已登记,单号', 'Registered as'], open_order: ['打开工单', 'Open the order'],
  possible_duplicates: ['可能重复的工单:', 'Possible duplicates:'], link_duplicate: ['关联为重复单', 'Link as duplicate'],
  linked: ['已关联为 {0} 的重复单', 'Linked as a duplicate of {0}'], saved: ['已保存', 'Saved'],
  back_to_queue: ['返回队列', 'Back to the queue'], facts: ['工单信息', 'Order'], actions: ['操作', 'Actions'],
  assign: ['派单', 'Assignment'], assign_submit: ['派单', 'Assign'], classify: ['调整分级分类', 'Reclassify'],
  classify_reason: ['调整原因(必填)', 'Reason (required)'], classify_submit: ['保存调整', 'Save'],
  reason_required: ['请填写原因', 'Please give a reason'], nothing_changed: ['等级和类别都没有改变', 'Neither grade nor category changed'],
  notes: ['备注', 'Notes'], note_add: ['添加备注', 'Add note'], note_internal: ['内部备注(业主不可见)', 'Internal note (owner cannot see)'],
  note_public: ['回复业主(业主可见)', 'Reply to owner (owner sees it)'], badge_internal: ['内部', 'Internal'], badge_public: ['业主可见', 'Owner sees'],
  note_visibility: ['备注类型', 'Note type'], reply_owner: ['回复业主', 'Reply to owner'], parts: ['用料', 'Parts'], quantity: ['数量', 'Qty'],
  time_log: ['工时', 'Time log'], work: ['现场记录', 'Work record'], checklist: ['检查项', 'Checklist'], attachments: ['附件', 'Attachments'],
  author: ['记录人', 'By'], at: ['时间', 'At'], start: ['开始', 'Start'], end: ['结束', 'End'], duration: ['时长', 'Duration'],
  deadlines: ['时限', 'Deadlines'], policy: ['时限规则', 'Policy'], due: ['应完成', 'Due'], done_at: ['完成于', 'Done'],
  paused: ['计时暂停中', 'Clock paused'], pauses: ['暂停记录', 'Pauses'], ongoing: ['进行中', 'ongoing'],
  met: ['按时', 'On time'], late: ['超时', 'Late'], rating: ['评价', 'Rating'], comment: ['评价内容', 'Comment'],
  auto_confirmed: ['超时自动确认', 'Auto-confirmed'], sla_events: ['时限预警', 'SLA events'],
  timeline: ['处理记录', 'Timeline'], superseded: ['未生效', 'Not applied'], rejected_edits: ['被拒绝的修改', 'Refused edits'],
  reject_reason: ['拒绝原因(必填)', 'Reason (required)'], visit_result: ['回访结果(必填)', 'Result (required)'],
  cancel_reason: ['取消原因(必填)', 'Reason (required)'], close_confirm: ['确认关闭工单?关闭后不能再处理(说明可选)', 'Close the order? It cannot be worked on afterwards (note optional)'],
  closing_needs: ['需{0}关闭', 'Needs a {0} to close'], someone: ['其他人员', 'someone else'], note_optional: ['说明(可选)', 'Note (optional)'],
  hold_reason: ['挂起原因', 'Reason'], dismiss: ['收起', 'Dismiss'], reason: ['原因', 'Reason'], what: ['内容', 'What'],
  stage: ['阶段', 'Stage'], level: ['级别', 'Level'], mark_read: ['标为已读', 'Mark read'], read: ['已读', 'Read'],
  stage_response: ['响应', 'Response'], stage_arrival: ['到场', 'Arrival'], stage_resolution: ['解决', 'Resolution'],
  level_warn_50: ['已过 50%', '50% used'], level_warn_75: ['已过 75%', '75% used'], level_breach: ['已超时', 'Breached'],
  sla_ok: ['正常', 'On track'], sla_half: ['已过 50%', '50% used'], sla_warn: ['已过 75%', '75% used'],
  sla_breach: ['已超时', 'Breached'], sla_none: ['无时限', 'No deadline'],
  time_left: ['剩 {0}', '{0} left'], overdue_by: ['超时 {0}', 'overdue {0}'],
  visits_title: ['待回访', 'Return visits owed'], since: ['起算', 'Since'],

  from: ['从', 'From'], to: ['至', 'To'], refresh: ['刷新', 'Refresh'], all_projects: ['全部项目', 'All projects'],
  eff_title: ['服务效率', 'Service efficiency'], eff_orders: ['工单数', 'Orders'], eff_response: ['响应 P50 / P90', 'Response P50 / P90'],
  eff_arrival: ['到场 P50 / P90', 'Arrival P50 / P90'], eff_resolution: ['解决 P50 / P90', 'Resolution P50 / P90'],
  eff_sla: ['时限达标率', 'SLA compliance'], eff_ftf: ['一次修复率', 'First-time fix'], eff_rework: ['返工率', 'Rework rate'],
  eff_avg: ['平均评分', 'Average rating'], eff_rated: ['已评价', 'Rated'], eff_share: ['4 星及以上', '4 stars or more'],
  goal: ['目标', 'goal'], backlog_age: ['积压(按时长)', 'Backlog by age'], backlog_tech: ['积压(按维修工)', 'Backlog by technician'],
  backlog_grade: ['积压(按等级)', 'Backlog by grade'], age_lt_1d: ['1 天内', '< 1 day'], age_1_3d: ['1–3 天', '1–3 days'],
  age_3_7d: ['3–7 天', '3–7 days'], age_gt_7d: ['7 天以上', '> 7 days'], unassigned: ['未派单', 'Unassigned'],
  heat_title: ['投诉热力图', 'Complaint heat map'], heat_building: ['楼栋 × 类别', 'Building × category'],
  heat_hour: ['星期 × 小时', 'Weekday × hour'], heat_pick: ['点击格子查看对应工单', 'Click a cell to list its orders'],
  kpi_tech: ['维修工考核', 'Technicians'], kpi_agents: ['客服考核', 'Agents'], kpi_csv: ['导出 CSV', 'Export CSV'],
  kpi_assigned: ['派单', 'Assigned'], kpi_completed: ['完工', 'Completed'], kpi_resp_on_time: ['响应及时率', 'Response on time'],
  kpi_res_on_time: ['解决及时率', 'Resolution on time'], kpi_satisfaction: ['满意度', 'Satisfaction'], kpi_score: ['得分', 'Score'],
  kpi_registered: ['登记', 'Registered'], kpi_median_assign: ['派单用时中位数', 'Median time to assign'], kpi_visits: ['回访', 'Return visits'],
  name: ['姓名', 'Name'],
  my_orders: ['我的报修', 'My requests'], report_new: ['我要报修', 'Report a problem'], report_submit: ['提交', 'Submit'],
  reported_as: ['已提交,单号 {0}', 'Submitted as {0}'], no_units: ['账号未绑定房屋,请联系物业', 'No unit is bound to this account; please call the office'],
  step_reported: ['已报修', 'Reported'], progress: ['进度', 'Progress'], confirm_title: ['确认完工并评价', 'Confirm and rate'],
  confirm_submit: ['确认完工', 'Confirm'], reject_title: ['问题没有解决?', 'Not fixed?'], reject_submit: ['拒绝完工,要求返工', 'Reject, ask for rework'],
  choose_rating: ['请先选择星级', 'Please choose a rating'], stars_n: ['{0} 星', '{0} stars'], thanks: ['已提交,谢谢', 'Sent, thank you'],
  cancel_order: ['撤销报修', 'Withdraw'], cancel_confirm: ['确定撤销?再点一次', 'Sure? Tap again'],

  tab_estate: ['房屋档案', 'Estate register'], estate_title: ['房屋档案', 'Estate register'],
  estate_summary: ['{0} 栋 · {1} 户 · {2} 位住户', '{0} buildings · {1} units · {2} residents'],
  estate_empty: ['该项目还没有房屋档案,可由主管导入', 'No register for this project yet; a supervisor can import one'],
  choose_building: ['选择楼栋查看房屋', 'Choose a building to see its units'], choose_unit: ['点击房号查看住户和工单', 'Click a unit for its residents and orders'],
  residents: ['住户', 'Residents'], relation: ['身份', 'Relation'], phone: ['电话', 'Phone'],
  reveal_phone: ['查看号码', 'Show number'], revealed_logged: ['已显示完整号码(已记录查看)', 'Full number shown (the view is logged)'],
  call: ['拨打', 'Call'], remove: ['移除', 'Remove'], remove_confirm: ['确定移除该住户?其姓名和电话将被删除', 'Remove this resident? Their name and number are deleted'],
  add_resident: ['添加住户', 'Add resident'], no_residents: ['暂无住户登记', 'No resident registered'],
  unit_orders: ['该房屋的工单', 'Orders of this unit'], no_unit_orders: ['该房屋暂无工单', 'No orders for this unit'],
  rel_owner: ['业主', 'Owner'], rel_tenant: ['租户', 'Tenant'], rel_family: ['家属', 'Family member'],
  room: ['房号', 'Room'], entrance: ['单元', 'Entrance'], residents_n: ['{0} 人', '{0}'], entrance_n: ['{0}单元', 'Entrance {0}'], open_n: ['{0} 单未完结', '{0} open'],
  import_title: ['导入房屋档案(Excel / CSV)', 'Import the register (Excel / CSV)'],
  import_hint: ['表头需包含 楼栋、房号 列;可选 单元、姓名、手机号码、身份、项目。先预览,无错误后再确认导入;导入只新增和更新,不删除。',
    'The header needs 楼栋 (building) and 房号 (room) columns; optional: 单元, 姓名, 手机号码, 身份, 项目. Preview first, then apply once no row has a fault; an import adds and updates, never deletes.'],
  import_preview: ['预览', 'Preview'], import_apply: ['确认导入', 'Apply import'],
  import_counts: ['共 {0} 行:新增房屋 {1},已有房屋 {2};新增住户 {3},更新 {4},不变 {5}', '{0} rows: {1} new units, {2} existing; {3} new residents, {4} updated, {5} unchanged'],
  import_errors: ['{0} 行有错误,请修改表格后重新预览', '{0} faulty rows: mend the sheet and preview again'],
  import_done: ['已导入', 'Imported'], import_ignored: ['未使用的列:{0}', 'Columns not used: {0}'], row: ['行', 'Row'], column: ['列', 'Column'],
  choose_file: ['请先选择文件', 'Choose a file first'],
  caller_lookup: ['来电弹屏', 'Caller'], caller_none: ['档案中没有此号码', 'This number is not in the register'],
  caller_use: ['选用', 'Use'], caller_open: ['该房屋有未完结工单:', 'Open orders of this unit:'], choose: ['请选择', 'Choose…'],
  contact_card: ['联系人', 'Contacts'],
  paused_for: ['已挂起:{0}', 'On hold: {0}'], auto_confirm_in: ['{0}后自动确认', 'Auto-confirms in {0}'],
  auto_confirm_due: ['即将自动确认', 'Auto-confirming'], auto_confirm_at: ['业主未确认将于 {0} 自动确认(还有 {1})', 'Confirmed for the owner at {0} if they do not answer ({1} left)'],
  confirm_by_phone: ['电话确认(代业主)', 'Confirmed by phone (for the owner)'], owner_rating: ['业主评分', 'Owner\'s rating'],
  h5_waiting_badge: ['待您确认', 'Waiting for you'], h5_on_hold: ['暂停处理:{0}', 'Paused: {0}'],
  h5_waiting_you: ['维修已完成,请确认;如未确认,将于 {0} 自动确认', 'The work is done: please confirm. Unless you answer, it is confirmed on {0}'],
  assign_to: ['同时派给(可选)', 'Assign to (optional)'], register_assign: ['登记并派单', 'Register and assign'],
  assistant: ['智能分类建议', 'Assistant suggests'], urgent: ['紧急', 'Urgent'], assistant_confidence: ['置信度 {0}%', 'confidence {0}%'],
  assistant_unsure: ['把握不足,请人工判断', 'unsure: please decide'], assistant_apply: ['采用建议', 'Use suggestion'],
  assistant_applied: ['已采用智能分类建议', 'Suggestion applied'], assistant_same_incident: ['可能是同一事件:', 'Possibly the same incident:'],
  assistant_reply: ['建议回复业主', 'Suggested reply to the owner'], assistant_dismiss: ['忽略建议', 'Set aside'],
  suggested: ['智能建议', 'Suggested'], urgent_suggested: ['智能判定紧急', 'Urgent (assistant)'],
  urgent_strip: ['智能判定紧急、待人工确认 {0} 张:', 'Judged urgent by the assistant, awaiting a person ({0}):'],
  sla_covered: ['(由事件承担)', '(carried by the incident)'],
  sla_covered_hint: ['该工单所属事件处理期间,时限由事件首报工单统一承担:此记录不通知、不计超时。', 'While its incident was open, the incident\'s first report carried the deadline: not told, not counted as a breach.'],
  stage_report: ['报事', 'Report'], level_urgent: ['智能判定紧急', 'Urgent (assistant)'], copy: ['复制', 'Copy'], copied: ['已复制', 'Copied'],
  possible_duplicates_before: ['该房屋已有 {0} 张同类未完结工单,请确认不是重复登记:', '{0} open orders of this unit and category: check this is not a duplicate:'],
  print_order: ['打印派工单', 'Print'], print_a4: ['A4', 'A4'], print_receipt: ['80mm 小票', '80 mm receipt'], print_now: ['打印', 'Print'],
  print_title: ['派工单', 'Work order'], print_response_due: ['响应时限', 'Respond by'], print_resolution_due: ['完成时限', 'Resolve by'],
  print_arrived: ['到场时间:', 'Arrived at:'], print_done: ['完工时间:', 'Completed at:'], print_parts: ['用料:', 'Parts:'],
  print_tech_sign: ['维修工签字:', 'Technician:'], print_owner_sign: ['业主签字:', 'Owner:'], print_satisfaction: ['满意度:', 'Satisfaction:'],
  print_footer: ['打印于 {0}', 'Printed {0}'], back: ['返回', 'Back'],
  call_desk: ['致电物业', 'Call the office'], h5_duplicate: ['您的房屋已有未完结的同类报修,可先查看进度:', 'Your unit already has an open request of this kind; see its progress:'],
  h5_respond_by: ['预计 {0} 前响应', 'Answered by {0}'], h5_resolve_by: ['{0} 前处理完成', 'done by {0}'],
  rate_1: ['很不满意', 'Very dissatisfied'], rate_2: ['不满意', 'Dissatisfied'], rate_3: ['一般', 'Neutral'], rate_4: ['满意', 'Satisfied'], rate_5: ['很满意', 'Very satisfied'],
  tag_on_time: ['上门准时', 'On time'], tag_polite: ['态度好', 'Polite'], tag_fixed: ['修得彻底', 'Fixed for good'], tag_tidy: ['现场整洁', 'Left it tidy'],
  tag_fair: ['收费合理', 'Fair price'], tag_not_fixed: ['没修好', 'Not fixed'], tag_late: ['上门迟到', 'Late'], tag_rude: ['态度差', 'Rude'], tag_messy: ['现场脏乱', 'Left a mess'],
  policy_complaint_minor: ['一般投诉(3 个工作日内解决)', 'Minor complaint (3 working days)'], policy_default: ['默认时限', 'Default'],
  policy_grade: ['{0}工单时限', '{0} orders'],
  heat_title_of: ['热力图', 'Heat map'], no_data: ['暂无数据', 'No data'], vs_before: ['与上一周期相比', 'Against the period before'],
  def_orders: ['本期登记的工单数', 'Orders registered in the period'],
  def_response: ['从登记到维修工接单的用时,中位数 / 90% 分位', 'Registration to the technician\'s acceptance: median / 90th percentile'],
  def_arrival: ['从登记到维修工到场的用时', 'Registration to arrival on site'], def_resolution: ['从登记到完工的用时', 'Registration to completion'],
  def_sla: ['已完工或已超时的工单中,没有任何阶段超时的比例(都还在处理中时暂无数据)', 'Of the orders completed or breached, the share with no stage breached (no figure while all are running)'],
  def_ftf: ['完工后业主未拒绝(无返工)的比例', 'Completed orders the owner never rejected'], def_rework: ['被业主拒绝返工过的比例', 'Completed orders reworked at least once'],
  def_avg: ['业主评分(1–5)的平均值', 'Average owner rating (1–5)'], def_rated: ['有评分的工单数', 'Orders rated'],
  def_share: ['评 4 星及以上的比例,目标 85%', 'Share rated 4 or 5, goal 85%'],
  mark_all_read: ['全部标为已读', 'Mark all read'], sound: ['提示音(严重工单与超时)', 'Sound for serious orders and breaches'],
  notif_events: ['提醒', 'Alerts'], notif_order_gone: ['(工单已不在您的范围内)', '(order no longer in your scope)'],
  search_hint: ['单号、房号、描述,或来电人/住户的完整姓名或电话', 'Number, unit, description, or a caller\'s or resident\'s whole name or phone'],
  queue_total: ['共 {0} 单', '{0} orders'], page_prev: ['上一页', 'Previous'], page_next: ['下一页', 'Next'],
  page_of: ['第 {0}/{1} 页', 'Page {0} of {1}'], page_size: ['每页条数', 'Rows per page'], per_page: ['每页 {0} 条', '{0} per page'],
  export_xlsx: ['导出 Excel', 'Export Excel'], export_csv: ['导出 CSV', 'Export CSV'],
  views: ['我的视图…', 'My views…'], view_save: ['保存为视图', 'Save view'], view_delete: ['删除视图', 'Delete view'],
  view_name: ['视图名称', 'Name of the view'], view_saved: ['已保存视图:{0}', 'View saved: {0}'], unit_history: ['{0} 的历史工单', 'Earlier orders of {0}'],
  unit_not_in_register: ['房屋档案中没有该房号', 'Not a unit of the register'],
};

// More strings, from a page's own module (the admin console's).
export const addStrings = (more) => Object.assign(STRINGS, more);

export function t(key, ...args) {
  const pair = STRINGS[key];
  return (pair ? pair[lang === 'en' ? 1 : 0] : key).replace(/\{(\d)\}/g, (_, i) => args[i] ?? '');
}

export function setLang(next) {
  lang = next === 'en' ? 'en' : 'zh';
  localStorage.setItem(LANG_KEY, lang);
  document.documentElement.lang = lang === 'en' ? 'en' : 'zh-CN';
  for (const el of document.querySelectorAll('[data-i18n]')) el.textContent = t(el.dataset.i18n);
}

// The login of this page (desk and h5 keep separate sessions), in localStorage: every tab of
// the browser shares it (a dispatcher opens orders in new tabs without signing in again), and
// signing out in one tab signs out all of them (see startPage).
let sessionKey = 'loopwork.desk';
let unauthorized = () => {};
export const session = {
  use(key) { sessionKey = key; },
  key: () => sessionKey,
  get() { try { return JSON.parse(localStorage.getItem(sessionKey)); } catch { return null; } },
  set(value) { localStorage.setItem(sessionKey, JSON.stringify(value)); },
  clear() { localStorage.removeItem(sessionKey); },
};
export const onUnauthorized = (handler) => { unauthorized = handler; };
// Told when the user signs out or is signed out, so that what was fetched for them goes.
const signedOutHooks = [];
export const onSignedOut = (hook) => signedOutHooks.push(hook);
export const signedOut = () => signedOutHooks.forEach((hook) => hook());

export class ApiError extends Error {
  constructor(status, body) {
    super(body?.message ?? `HTTP ${status}`);
    Object.assign(this, { status, code: body?.code ?? `http_${status}`, zh: body?.message_zh });
  }
}

// An API refusal in the page's language; anything else is the network's (fetch's own message,
// e.g. "Failed to fetch", says nothing to a dispatcher).
export const errorText = (e) => e instanceof ApiError ? (lang === 'zh' && e.zh) || e.message : t('network_error');
export const isNetworkError = (e) => !(e instanceof ApiError);

// A fresh key for a request that must take effect once however often it is sent again
// (getRandomValues works on plain http too, where randomUUID does not).
export const newKey = () => Array.from(crypto.getRandomValues(new Uint8Array(16)), (b) => b.toString(16).padStart(2, '0')).join('');

// Calls the JSON API. `query` skips empty values; `raw` returns the Response (e.g. for a CSV).
export async function api(path, { method = 'GET', body, query, raw = false, idempotencyKey } = {}) {
  const url = new URL(path, location.origin);
  for (const [k, v] of Object.entries(query ?? {})) if (v != null && v !== '') url.searchParams.set(k, v);
  const token = session.get()?.token;
  const headers = { Accept: 'application/json' };
  if (idempotencyKey) headers['Idempotency-Key'] = idempotencyKey;
  if (token) headers.Authorization = `Bearer ${token}`;
  if (body !== undefined) headers['Content-Type'] = 'application/json';
  const res = await fetch(url, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
  if (!res.ok) {
    const error = await res.json().then((j) => j.error, () => null);
    if (res.status === 401 && token) { session.clear(); signedOut(); unauthorized(); }
    throw new ApiError(res.status, error);
  }
  if (raw) return res;
  if (res.status === 204) return null;
  return (res.headers.get('content-type') ?? '').includes('json') ? res.json() : res.text();
}

export const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));
export function debounce(fn, ms) {
  let timer;
  return (...args) => { clearTimeout(timer); timer = setTimeout(() => fn(...args), ms); };
}

// Live updates: reads /api/v1/live (it needs the bearer header, so not EventSource) and calls
// `onFeed` (debounced) on each `feed` event, and after each reconnection, since events may have
// been missed while disconnected; `onNotify` on `notify` and `onConversation` on `conversation`
// (an owner's conversation with the assistant changed).
let liveStarted = false;
export function startLive(onFeed, onNotify = onFeed, onConversation = onNotify) {
  if (liveStarted) return;
  liveStarted = true;
  const fire = debounce(onFeed, 300);
  const notify = debounce(onNotify, 300);
  const conversation = debounce(onConversation, 300);
  let connected = false;
  const listen = async () => {
    const token = session.get()?.token;
    if (!token) return;
    const res = await fetch('/api/v1/live', { headers: { Authorization: `Bearer ${token}`, Accept: 'text/event-stream' } });
    if (res.status === 401) { session.clear(); signedOut(); unauthorized(); return; }
    if (!res.ok || !res.body) return;
    if (connected) fire();
    connected = true;
    const reader = res.body.pipeThrough(new TextDecoderStream()).getReader();
    let buffer = '';
    for (;;) {
      const { value, done } = await reader.read();
      if (done) return;
      buffer = (buffer + value).replace(/\r\n?/g, '\n');
      let end;
      while ((end = buffer.indexOf('\n\n')) >= 0) {
        const head = buffer.slice(0, end);
        if (/^event:\s*feed\s*$/m.test(head)) fire();
        else if (/^event:\s*notify\s*$/m.test(head)) notify();
        else if (/^event:\s*conversation\s*$/m.test(head)) conversation();
        buffer = buffer.slice(end + 2);
      }
    }
  };
  (async () => {
    for (;;) {
      await listen().catch(() => {}); // dropped or refused: try again after a pause
      await sleep(3000);
    }
  })();
}

// Vocabulary: codes and their zh/en labels.
export let vocab = {};
export const loadVocab = async () => (vocab = await api('/api/v1/vocabulary'));
export function label(list, code) {
  if (code == null || code === '') return '—';
  const item = (typeof list === 'string' ? vocab[list] : list)?.find((v) => v.code === code);
  if (!item) return String(code);
  // English labels start with a capital, as a label on a page does.
  const text = item[lang] ?? item.zh;
  return lang === 'en' ? text.charAt(0).toUpperCase() + text.slice(1) : text;
}
export const options = (list, blank, except = []) => [
  blank != null && h('option', { value: '' }, blank),
  ...(vocab[list] ?? []).filter((v) => !except.includes(v.code)).map((v) => h('option', { value: v.code }, label(list, v.code))),
];

// Times are shown in Asia/Shanghai whatever the browser's zone.
const formats = {};
const format = (options) => (formats[lang + JSON.stringify(options)] ??=
  new Intl.DateTimeFormat(lang === 'en' ? 'en-GB' : 'zh-CN', { timeZone: 'Asia/Shanghai', hourCycle: 'h23', ...options }));
export const fmtTime = (ms) => ms == null ? '—' :
  format({ year: 'numeric', month: '2-digit', day: '2-digit', hour: '2-digit', minute: '2-digit' }).format(ms);
export const shanghaiDate = (ms) => new Intl.DateTimeFormat('en-CA', { timeZone: 'Asia/Shanghai' }).format(ms);
export const dayStart = (date) => Date.parse(`${date}T00:00:00+08:00`); // 'YYYY-MM-DD' in Shanghai
export const localInputToMs = (value) => Date.parse(`${value}:00+08:00`); // datetime-local, Shanghai
export function fmtDuration(ms) {
  if (ms == null || !Number.isFinite(ms)) return '—';
  const minutes = Math.floor(Math.abs(ms) / 60000);
  const [d, hr, mi] = [Math.floor(minutes / 1440), Math.floor((minutes % 1440) / 60), minutes % 60];
  const u = lang === 'en' ? ['d', 'h', 'm', ' '] : ['天', '小时', '分', ''];
  if (!minutes) return lang === 'en' ? '<1m' : '<1分';
  const parts = d ? [[d, 0], [hr, 1]] : hr ? [[hr, 1], [mi, 2]] : [[mi, 2]];
  return parts.filter(([v], i) => v || !i).map(([v, i]) => v + u[i]).join(u[3]);
}
// 预约时间: a window of time as a day and two times of day (China Standard Time), quick picks
// for the usual half days, read back as {from, to} in ms (null without a day).
const HALF_DAYS = [['appt_today_pm', 0, '14:00', '18:00'], ['appt_tomorrow_am', 1, '09:00', '12:00'], ['appt_tomorrow_pm', 1, '14:00', '18:00']];
const hhmm = (ms) => new Intl.DateTimeFormat('en-GB', { timeZone: 'Asia/Shanghai', hour: '2-digit', minute: '2-digit', hourCycle: 'h23' }).format(ms);
export function windowInputs(name, value) {
  const date = h('input', { type: 'date', name: `${name}_date`, value: value ? shanghaiDate(value.from) : '', 'data-testid': `${name}-date` });
  const from = h('input', { type: 'time', name: `${name}_from`, value: value ? hhmm(value.from) : '', 'data-testid': `${name}-from` });
  const to = h('input', { type: 'time', name: `${name}_to`, value: value ? hhmm(value.to) : '', 'data-testid': `${name}-to` });
  const pick = ([key, days, a, b]) => h('button', { type: 'button', class: 'chip', 'data-testid': `${name}-${key}`, onclick: (e) => {
    Object.assign(date, { value: shanghaiDate(Date.now() + days * 86_400_000) });
    Object.assign(from, { value: a });
    Object.assign(to, { value: b });
    e.currentTarget.closest('form')?.dispatchEvent(new Event('change', { bubbles: true }));
  } }, t(key));
  return h('div', { class: 'stack window' }, h('div', { class: 'row' }, date, from, '–', to), h('div', { class: 'chips' }, HALF_DAYS.map(pick)));
}
export function readWindow(form, name) {
  const v = (k) => form.elements.namedItem(`${name}_${k}`)?.value?.trim();
  if (!v('date')) return null;
  return { from: Date.parse(`${v('date')}T${v('from') || '00:00'}:00+08:00`), to: Date.parse(`${v('date')}T${v('to') || '23:59'}:00+08:00`) };
}
export const fmtWindow = (a) => {
  if (!a) return '—';
  if (shanghaiDate(a.from) !== shanghaiDate(a.to - 1)) return `${fmtTime(a.from)} – ${fmtTime(a.to)}`;
  const day = format({ month: 'numeric', day: 'numeric', weekday: 'short' }).format(a.from);
  return `${day} ${hhmm(a.from)}–${hhmm(a.to)}`;
};
export const pct = (x) => x == null ? '—' : `${Math.round(x * 100)}%`;

// The SLA badge: coloured from its stage's checkpoints and the current time; repainted by the
// ticker so colours and countdowns move without reloading.
export function slaLevel(sla, now = Date.now()) {
  if (!sla || sla.due_at == null) return 'none';
  return now >= sla.due_at ? 'breach' : now >= sla.warn_at ? 'warn' : now >= sla.half_at ? 'half' : 'ok';
}
export function slaBadge(sla) {
  const el = h('span', { class: 'sla', 'data-testid': 'sla' });
  if (sla?.due_at != null) Object.assign(el.dataset, { stage: sla.stage ?? '', half: sla.half_at ?? sla.due_at, warn: sla.warn_at ?? sla.due_at, due: sla.due_at });
  paintSla(el);
  return el;
}
function paintSla(el, now = Date.now()) {
  const d = el.dataset;
  const sla = d.due ? { half_at: +d.half, warn_at: +d.warn, due_at: +d.due } : null;
  const level = slaLevel(sla, now);
  el.className = `sla sla-${level}`;
  el.title = t(`sla_${level}`);
  el.closest('tr')?.setAttribute('data-sla', level);
  if (!sla) { el.textContent = '—'; return; }
  const left = sla.due_at - now;
  const mark = { half: '50% · ', warn: '75% · ' }[level] ?? '';
  el.textContent = (d.stage ? `${t(`stage_${d.stage}`)} ` : '') + mark + (left >= 0 ? t('time_left', fmtDuration(left)) : t('overdue_by', fmtDuration(-left)));
}
export const startSlaTicker = () => setInterval(() => document.querySelectorAll('.sla[data-due]').forEach((el) => paintSla(el)), 5000);

// DOM: h('tag', {attr, onclick, value, checked, style: {prop: v}}, ...children). `value` and
// `checked` become the field's default, so form.reset() and rerender() know what the user changed.
export function h(tag, attrs, ...children) {
  const el = document.createElement(tag);
  const late = {};
  for (const [k, v] of Object.entries(attrs ?? {})) {
    if (v == null || v === false) continue;
    if (k.startsWith('on')) el.addEventListener(k.slice(2), v);
    else if (k === 'style') for (const [p, x] of Object.entries(v)) el.style.setProperty(p, x);
    else if (k === 'checked' || (k === 'value' && ['input', 'select', 'textarea'].includes(tag))) late[k] = v;
    else el.setAttribute(k, v === true ? '' : v);
  }
  el.append(...children.flat(Infinity).filter((c) => c != null && c !== false).map((c) => (c instanceof Node ? c : String(c))));
  if ('checked' in late) el.defaultChecked = true;
  if ('value' in late) {
    if (tag === 'select') for (const o of el.options) o.defaultSelected = o.value === String(late.value);
    else el.defaultValue = late.value;
  }
  return el;
}

// Re-renders `root` from `build()` and keeps what the user typed or chose (fields, by name,
// that differ from their defaults) and the focus: live updates must not eat a half-typed note.
const dirty = (el) => el.type === 'checkbox' || el.type === 'radio' ? el.checked !== el.defaultChecked
  : el.tagName === 'SELECT' ? el.selectedIndex !== Math.max(0, [...el.options].findIndex((o) => o.defaultSelected))
  : el.value !== el.defaultValue;
export function rerender(root, build) {
  const fields = () => root.querySelectorAll('input[name], select[name], textarea[name]');
  const kept = new Map([...fields()].filter(dirty).map((el) => [el.name, el.type === 'checkbox' ? el.checked : el.value]));
  const focused = root.contains(document.activeElement) ? document.activeElement.name : null;
  root.replaceChildren(...[build()].flat(Infinity).filter(Boolean));
  for (const el of fields()) {
    if (kept.has(el.name)) el[el.type === 'checkbox' ? 'checked' : 'value'] = kept.get(el.name);
    if (focused && el.name === focused) el.focus();
  }
}

// A card with its heading; a muted line; a table that scrolls sideways on a phone.
export const section = (title, testid, ...content) => h('section', { class: 'card', 'data-testid': testid }, h('h3', {}, title), ...content);
export const muted = (text) => h('p', { class: 'muted' }, text);
export const table = (heads, rows, cls) => h('div', { class: 'scroll-x' }, h('table', { class: cls },
  h('thead', {}, h('tr', {}, heads.map((x) => h('th', {}, x)))), h('tbody', {}, rows)));
export const field = (text, control, cls) => h('label', { class: `field ${cls ?? ''}` }, h('span', {}, text), control);
export const statusBadge = (code, attrs) => h('span', { class: `badge st-${code}`, ...attrs }, label('statuses', code));
export const place = (o) => [o.building && t('building_n', o.building), o.unit, o.area].filter(Boolean).join(' · ') || '—';
export const errorBox = (e) => h('p', { class: 'error', 'data-testid': 'error' }, errorText(e));

let toastTimer;
export function toast(text, kind = 'ok') {
  const el = document.getElementById('toast');
  Object.assign(el, { textContent: text, className: `toast ${kind}`, hidden: false });
  clearTimeout(toastTimer);
  toastTimer = setTimeout(() => { el.hidden = true; }, kind === 'error' ? 8000 : 3500);
}
export const showError = (e) => toast(errorText(e), 'error');
// A toast belongs to the view it was shown on: leaving the view hides it.
export function hideToast() {
  clearTimeout(toastTimer);
  const el = document.getElementById('toast');
  if (el) el.hidden = true;
}

// Runs `work` with `button` disabled; failures are shown, not thrown.
export async function busy(button, work) {
  if (button) button.disabled = true;
  try {
    await work();
    // A success puts an earlier error to rest: its toast does not stay over the new state.
    if (document.getElementById('toast')?.classList.contains('error')) hideToast();
  } catch (e) { showError(e); } finally { if (button) button.disabled = false; }
}

// The login form, shared by both pages; `accept(role)` says whether this page serves the role.
// With `byCode` (the owner's page) a code sent by text message comes first, the password second.
export function loginView(root, { accept, done, hint, byCode }) {
  const error = h('p', { class: 'error', 'data-testid': 'login-error', hidden: true });
  const say = (text) => Object.assign(error, { textContent: text, hidden: false });
  const signedIn = (s) => {
    if (!accept(s.role)) return say(t('login_wrong_role'));
    session.set(s);
    done();
  };
  const form = h('form', { class: 'card login', 'data-testid': 'login-form' },
    h('h2', {}, t('login_title')),
    field(t('login_user'), h('input', { name: 'login', 'data-testid': 'login-user', autocomplete: 'username', required: true })),
    field(t('login_password'), h('input', { name: 'password', type: 'password', 'data-testid': 'login-password', autocomplete: 'current-password', required: true })),
    h('button', { type: 'submit', class: 'primary', 'data-testid': 'login-submit' }, t('login_submit')),
    byCode && h('button', { type: 'button', class: 'link', 'data-testid': 'login-by-code', onclick: () => show(codeForm) }, t('login_by_code')),
    hint && h('p', { class: 'muted' }, hint), error);
  form.addEventListener('submit', (e) => {
    e.preventDefault();
    busy(form.querySelector('button'), async () => {
      const body = { login: form.elements.login.value.trim(), password: form.elements.password.value, device_name: 'web' };
      let s;
      try { s = await api('/api/v1/login', { method: 'POST', body }); } catch (err) { return say(errorText(err)); }
      signedIn(s);
    });
  });
  const codeForm = byCode ? codeLogin(say, signedIn, () => show(form)) : null;
  const show = (which) => { error.hidden = true; which.append(error); root.replaceChildren(which); };
  show(form);
  // The code first where the server sends codes; otherwise the password alone.
  if (codeForm) {
    const toCode = form.querySelector('[data-testid=login-by-code]');
    toCode.hidden = true;
    api('/api/v1/login/methods').then((m) => {
      if (!m.code) return;
      toCode.hidden = false;
      if (root.contains(form) && !form.elements.login.value) show(codeForm);
    }).catch(() => {});
  }
}

// Signing in with a code: the number, 获取验证码 (then a minute's countdown), the six digits.
function codeLogin(say, signedIn, toPassword) {
  const phone = h('input', { name: 'phone', type: 'tel', inputmode: 'tel', autocomplete: 'tel', required: true, 'data-testid': 'login-phone' });
  const code = h('input', { name: 'code', inputmode: 'numeric', autocomplete: 'one-time-code', maxlength: 6, pattern: '[0-9]{6}', required: true, 'data-testid': 'login-code' });
  const send = h('button', { type: 'button', 'data-testid': 'login-send-code' }, t('send_code'));
  let timer = null;
  const countdown = (seconds) => {
    clearInterval(timer);
    let left = seconds;
    const tick = () => {
      send.disabled = left > 0;
      send.textContent = left > 0 ? t('resend_in', left) : t('send_code');
      left -= 1;
      if (left < 0) clearInterval(timer);
    };
    tick();
    timer = setInterval(tick, 1000);
  };
  send.addEventListener('click', async () => {
    if (!phone.value.trim()) return say(t('phone_first'));
    let wait = 0;
    await busy(send, async () => {
      try {
        const r = await api('/api/v1/login/code', { method: 'POST', body: { phone: phone.value.trim() } });
        toast(t('code_sent'));
        wait = r.retry_after_s ?? 60;
        code.focus();
      } catch (err) {
        say(errorText(err));
      }
    });
    // After `busy` gave the button back: the countdown keeps it until the number may ask again.
    if (wait) countdown(wait);
  });
  const form = h('form', { class: 'card login', 'data-testid': 'login-code-form' },
    h('h2', {}, t('login_title')),
    field(t('mobile'), phone),
    field(t('sms_code'), h('div', { class: 'row' }, code, send)),
    h('button', { type: 'submit', class: 'primary', 'data-testid': 'login-code-submit' }, t('login_submit')),
    h('button', { type: 'button', class: 'link', 'data-testid': 'login-by-password', onclick: toPassword }, t('login_by_password')));
  form.addEventListener('submit', (e) => {
    e.preventDefault();
    busy(e.submitter, async () => {
      let s;
      try {
        s = await api('/api/v1/login/code/verify', { method: 'POST', body: { phone: phone.value.trim(), code: code.value.trim(), device_name: 'h5' } });
      } catch (err) { return say(errorText(err)); }
      clearInterval(timer);
      signedIn(s);
    });
  });
  return form;
}

// A page's start: the language switch, sign-out, routing by the hash, the sign-in form on a 401.
export function startPage({ chrome, route, showLogin, signedIn }) {
  const byId = (id) => document.getElementById(id);
  byId('lang-switch').addEventListener('click', () => {
    setLang(lang === 'zh' ? 'en' : 'zh');
    chrome();
    if (signedIn()) route(); else showLogin();
  });
  // Signing out revokes this browser's token on the server, then forgets it (in every tab).
  byId('logout').addEventListener('click', async () => {
    const device = session.get()?.device_id;
    if (device) await api(`/api/v1/devices/${encodeURIComponent(device)}/revoke`, { method: 'POST' }).catch(() => {});
    session.clear();
    location.hash = '';
    location.reload();
  });
  // Another tab signed in or out: follow it.
  window.addEventListener('storage', (e) => {
    if (e.key === session.key() && (e.newValue == null) !== (e.oldValue == null)) location.reload();
  });
  window.addEventListener('hashchange', () => { hideToast(); route(); });
  onUnauthorized(showLogin);
  setLang(lang);
}

// The page's view (#view): `mount` shows a view's nodes and loads its data with `load` (may be
// null); `reload` loads it again (live events, refresh), and is ignored once the user moved on.
// `data-state` (loading, ready, error) tells tests and styles where the view is.
export function viewer(view) {
  let current = null;
  let retry = null;
  const reload = async () => {
    const load = current;
    clearTimeout(retry);
    if (!load) { view.dataset.state = 'ready'; return; }
    view.dataset.state = 'loading';
    let error = null;
    try { await load(); } catch (e) { error = e; }
    if (current !== load) return; // the user moved on meanwhile
    // The view keeps what it last showed; a network failure is retried by itself.
    Object.assign(view.querySelector('[data-testid=view-error]'), { textContent: error ? errorText(error) : '', hidden: !error });
    view.dataset.state = error ? 'error' : 'ready';
    if (error && isNetworkError(error)) retry = setTimeout(() => { if (current === load) reload(); }, 5000);
  };
  const mount = (nodes, load) => {
    current = load;
    view.replaceChildren(h('p', { class: 'error', 'data-testid': 'view-error', hidden: true }), ...nodes.filter(Boolean));
    return reload();
  };
  return { mount, reload };
}
