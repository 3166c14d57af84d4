#!/usr/bin/env python3
# Writes server/web/openapi.json, the OpenAPI document of the JSON API (GET /openapi.json).
# Edit the routes and schemas here and run it; server/src/web.rs tests that the document
# describes exactly the routes api.rs serves.
import json
E={"$ref":"#/components/responses/Error"}
def op(summary, tag, params=(), body=None, ok="200", okschema=None, okdesc="OK", auth=True, okcontent="application/json"):
    o={"summary":summary,"tags":[tag],"responses":{}}
    if params: o["parameters"]=list(params)
    if body: o["requestBody"]={"required":True,"content":{"application/json":{"schema":body}}}
    r={"description":okdesc}
    if okschema is not None: r["content"]={okcontent:{"schema":okschema}}
    o["responses"][ok]=r
    o["responses"]["4XX"]=E
    o["responses"]["5XX"]=E
    if not auth: o["security"]=[]
    return o
def q(name, typ="string", desc=None, required=False):
    p={"name":name,"in":"query","required":required,"schema":{"type":typ}}
    if desc: p["description"]=desc
    return p
ID={"name":"id","in":"path","required":True,"schema":{"type":"string"}}
ref=lambda n:{"$ref":"#/components/schemas/"+n}
obj=lambda props, req=(): {"type":"object","properties":props, **({"required":list(req)} if req else {}), "additionalProperties": False}
S=lambda t="string": {"type":t}
N={"type":["integer","null"]}
period=[q("project"),q("from","integer","ms since the epoch; default: 30 days before `to`"),q("to","integer","ms since the epoch; default: now")]
paths={
 "/healthz":{"get":op("Ready when the database answers","system",auth=False,okschema=S(),okcontent="text/plain")},
 "/openapi.json":{"get":op("This document","system",auth=False,okschema={"type":"object"})},
 "/":{"get":op("The dispatcher desk (HTML)","pages",auth=False,okschema=S(),okcontent="text/html")},
 "/h5":{"get":op("The owner's page (HTML, small screens)","pages",auth=False,okschema=S(),okcontent="text/html")},
 "/assets/{name}":{"get":op("A page asset (JS, CSS)","pages",params=[{"name":"name","in":"path","required":True,"schema":S()}],auth=False,okschema=S(),okcontent="text/plain")},
 "/sync/v1":{"post":{**op("One sync round trip (binary frames, docs/protocol.md)","sync",okschema=S(),okcontent="application/x-loopwork-sync"),"requestBody":{"required":True,"content":{"application/x-loopwork-sync":{"schema":{"type":"string","format":"binary"}}}}}},
 "/api/v1/login":{"post":op("Sign in: a bearer token for a new device. Wrong passwords are throttled per login and per address: 429 `too_many_attempts` with Retry-After (docs/web.md)","identity",auth=False,body=obj({"login":{"type":"string","maxLength":100},"password":{"type":"string","maxLength":200},"device_name":{"type":"string","maxLength":100}},["login","password"]),okschema=obj({"token":S(),"user_id":S(),"role":S(),"org_id":S(),"device_id":S()}))},
 "/api/v1/devices/{id}/revoke":{"post":op("Revoke a device (a lost phone)","identity",params=[ID],ok="204",okdesc="Revoked")},
 "/api/v1/me":{"get":op("The signed-in user: role, name, units, projects","identity",okschema=ref("Me"))},
 "/api/v1/vocabulary":{"get":op("Every code with its zh-CN and English labels","desk",okschema=ref("Vocabulary"))},
 "/api/v1/technicians":{"get":op("Technicians with their open orders and whether they are on duty (office staff)","desk",okschema={"type":"array","items":ref("Technician")})},
 "/api/v1/orders":{
   "get":op("The queue: orders in the caller's scope, filtered, most urgent first","desk",params=[q("status",desc="a status code, or `open`"),q("kind"),q("grade"),q("category"),q("project"),q("building"),q("unit"),q("assignee"),q("overdue","boolean"),q("q",desc="part of the number or unit"),q("from","integer"),q("to","integer"),q("hour_of_week","integer","0 = Monday 00:00 China Standard Time"),q("limit","integer","1-500, default 200")],okschema={"type":"array","items":ref("OrderRow")}),
   "post":op("Register an order (报修/投诉登记); gets its archived number at once, with possible duplicates","desk",body=ref("Registration"),ok="201",okschema=obj({"id":S(),"number":S(),"duplicates":{"type":"array","items":ref("OrderRow")}}))},
 "/api/v1/orders/bulk-assign":{"post":op("Assign several orders to one technician (office staff)","desk",body=obj({"ids":{"type":"array","items":S(),"maxItems":100},"assignee":S()},["ids","assignee"]),okschema=obj({"results":{"type":"array","items":obj({"id":S(),"ok":S("boolean"),"error":ref("ErrorBody")})}}))},
 "/api/v1/orders/{id}":{"get":op("An order's detail: fields, timeline, rejected edits, deadlines, rating, SLA events, the actions the caller may take","desk",params=[ID],okschema=ref("OrderDetail"))},
 "/api/v1/orders/{id}/actions":{"post":op("A lifecycle action, checked by the same rules as on a phone","desk",params=[ID],body=obj({"action":{"type":"string","enum":["assign","accept","arrive","start","hold","resume","complete","confirm","reject","return_visit","close","cancel"]},"assignee":S(),"rating":{"type":"integer","minimum":1,"maximum":5},"text":S(),"hold_reason":{"type":"string","enum":["waiting_for_parts","owner_not_home","other"]}},["action"]),okschema=ref("OrderDetail"))},
 "/api/v1/orders/{id}/classify":{"post":op("Change grade or category, with a reason (kept as a note; office staff)","desk",params=[ID],body=obj({"grade":S(),"category":S(),"reason":S()},["reason"]),okschema=ref("OrderDetail"))},
 "/api/v1/orders/{id}/notes":{"post":op("Add a note","desk",params=[ID],body=obj({"text":S()},["text"]),okschema=ref("OrderDetail"))},
 "/api/v1/orders/{id}/link":{"post":op("Mark the order a duplicate of another: cancelled with a note naming it (office staff)","desk",params=[ID],body=obj({"to":S()},["to"]),okschema=ref("OrderDetail"))},
 "/api/v1/orders/{id}/audit":{"get":op("The audit trail: every change, who, which device, device and server times, verdict (office staff)","audit",params=[ID],okschema={"type":"array","items":{"type":"object"}})},
 "/api/v1/orders/{id}/contact":{"get":op("The owner's contact, masked unless the caller may see it","privacy",params=[ID],okschema={"type":"object"})},
 "/api/v1/orders/{id}/contact/reveal":{"post":op("Reveal the owner's phone number (logged)","privacy",params=[ID],okschema={"type":"object"})},
 "/api/v1/orders/{id}/contact/reveals":{"get":op("Who revealed the owner's phone number, when (office staff)","privacy",params=[ID],okschema={"type":"array","items":{"type":"object"}})},
 "/api/v1/orders/{id}/sla-events":{"get":op("Warnings and breaches recorded on the order (office staff)","deadlines",params=[ID],okschema={"type":"array","items":ref("SlaEvent")})},
 "/api/v1/me/export":{"get":op("Everything the server holds about the signed-in user","privacy",okschema={"type":"object"})},
 "/api/v1/me/erase":{"post":op("Erase the signed-in owner's personal data","privacy",ok="204",okdesc="Erased")},
 "/api/v1/return-visits":{"get":op("Return visits (回访) customer service owes, with deadlines (office staff)","closed loop",okschema={"type":"array","items":{"type":"object"}})},
 "/api/v1/notifications":{"get":op("The signed-in user's notification feed (warnings, breaches)","deadlines",okschema={"type":"array","items":{"type":"object"}})},
 "/api/v1/notifications/{id}/read":{"post":op("Mark a notification read","deadlines",params=[ID],ok="204",okdesc="Marked")},
 "/api/v1/settings/closing-authority":{"get":op("Who may close each grade (office staff)","settings",okschema=ref("ClosingAuthority")),"put":op("Set who may close each grade (admins)","settings",body=ref("ClosingAuthority"),ok="204",okdesc="Saved")},
 "/api/v1/settings/sla":{"get":op("The organization's SLA book: calendars and policies","settings",okschema={"type":"object"}),"put":op("Replace the SLA book (admins; validated)","settings",body={"type":"object"},ok="204",okdesc="Saved")},
 "/api/v1/settings/closed-loop":{"get":op("Days before an unanswered order is confirmed automatically","settings",okschema=obj({"auto_confirm_days":S("integer")})),"put":op("Set them (admins, 1-30)","settings",body=obj({"auto_confirm_days":S("integer")},["auto_confirm_days"]),ok="204",okdesc="Saved")},
 "/api/v1/settings/escalation":{"get":op("The escalation chain: who hears each level (warn_50, warn_75, breach) of each grade (office staff)","settings",okschema=ref("EscalationChain")),"put":op("Replace the escalation chain (admins; validated)","settings",body=ref("EscalationChain"),ok="204",okdesc="Saved")},
 "/api/v1/settings/webhooks":{"get":op("Webhook endpoints (admins)","settings",okschema={"type":"array","items":{"type":"object"}}),"post":op("Register an endpoint; its signing secret is shown once (admins). Loopback, private, link-local and metadata destinations are refused (400 `forbidden_destination`) unless private networks are allowed","settings",body=obj({"url":{"type":"string","maxLength":500}},["url"]),ok="201",okschema={"type":"object"})},
 "/api/v1/settings/webhooks/{id}":{"delete":op("Remove an endpoint (admins)","settings",params=[ID],ok="204",okdesc="Removed")},
 "/api/v1/settings/webhook-destinations":{"get":op("Whether webhooks may post to loopback and private networks (admins)","settings",okschema=obj({"allow_private":S("boolean")},["allow_private"])),"put":op("Allow or refuse private-network webhook destinations, for on-premises receivers (admins); link-local and metadata addresses are always refused","settings",body=obj({"allow_private":S("boolean")},["allow_private"]),okschema=obj({"allow_private":S("boolean")},["allow_private"]))},
 "/api/v1/live":{"get":op("Server-sent events: `feed` when the organization's feed advances","sync",okschema=S(),okcontent="text/event-stream")},
 "/api/v1/dashboard/efficiency":{"get":op("服务效能仪表盘: response, arrival and resolution times, SLA compliance, first-time fix, rework, satisfaction, backlog (office staff)","dashboards",params=period,okschema={"type":"object"})},
 "/api/v1/dashboard/heatmap":{"get":op("投诉热力图: complaints by building × category and weekday × hour (office staff)","dashboards",params=period+[q("kind",desc="a kind code or `all`; default complaint")],okschema={"type":"object"})},
 "/api/v1/kpis":{"get":op("量化考核: per technician and per customer-service agent, with scores; CSV with format=csv (supervisors and above)","dashboards",params=period+[q("format",desc="json (default) or csv")],okschema={"type":"object"})},
}
nullable=lambda t: {"type":[t,"null"]}
row_props={"id":S(),"number":S(),"kind":S(),"category":S(),"grade":S(),"status":S(),"assignee":nullable("string"),"assignee_name":nullable("string"),"project":S(),"building":nullable("string"),"unit":nullable("string"),"area":nullable("string"),"created_at":S("integer"),"next_deadline":N,"sla":{"oneOf":[{"type":"null"},obj({"stage":S(),"half_at":N,"warn_at":N,"due_at":S("integer")})]},"rating":N,"reopen_count":S("integer")}
detail_props=dict(row_props)
detail_props.update({k:{} for k in ["description","channel","occurred_at","reporter","caller","notes","parts","time_log","checklist","attachments","timeline","rejected_edits","countdown","pauses","rating_comment","auto_confirmed","return_visit_required","sla_events"]})
detail_props["actions"]={"type":"array","items":S()}
doc={
 "openapi":"3.1.0",
 "info":{"title":"Loopwork API","version":"1","description":"Loopwork 工单闭环: the JSON API of the server (docs/web.md) and the sync endpoint (docs/protocol.md). Errors carry a stable machine-readable `code` with English and zh-CN messages. Times are Unix milliseconds."},
 "servers":[{"url":"/"}],
 "security":[{"bearer":[]}],
 "paths":paths,
 "components":{
  "securitySchemes":{"bearer":{"type":"http","scheme":"bearer","description":"The token from POST /api/v1/login"}},
  "responses":{"Error":{"description":"Refused, with a stable code","content":{"application/json":{"schema":obj({"error":ref("ErrorBody")},["error"])}}}},
  "schemas":{
   "ErrorBody":obj({"code":S(),"message":S(),"message_zh":S()},["code","message","message_zh"]),
   "Me":obj({"user_id":S(),"role":S(),"org_id":S(),"name":S(),"units":{"type":"array","items":obj({"project":S(),"building":S(),"unit":S()})},"projects":{"type":"array","items":obj({"code":S(),"name":S()})}}),
   "Label":obj({"code":S(),"zh":S(),"en":S()}),
   "ActionLabel":obj({"code":S(),"zh":S(),"en":S(),"requires_text":{"type":"boolean","description":"the action needs a text: a reason (reject, cancel) or a result (return_visit)"}}),
   "Vocabulary":obj({**{k:{"type":"array","items":ref("Label")} for k in ["kinds","categories","grades","channels","statuses","hold_reasons","roles"]}, "actions":{"type":"array","items":ref("ActionLabel")}}),
   "Technician":obj({"user_id":S(),"name":S(),"open_orders":S("integer"),"on_duty":S("boolean"),"last_seen_at":N}),
   "OrderRow":obj(row_props),
   "OrderDetail":{"type":"object","properties":detail_props},
   "Registration":obj({"kind":S(),"category":S(),"grade":S(),"channel":S(),"project":S(),"building":S(),"unit":S(),"area":S(),"description":{"type":"string","maxLength":2000},"occurred_at":S("integer"),"caller_name":{"type":"string","maxLength":40},"caller_phone":{"type":"string","maxLength":20}},["kind","category","channel","project","description"]),
   "SlaEvent":{"type":"object","properties":{"stage":S(),"level":S(),"due_ms":S("integer"),"at_ms":S("integer"),"fired_at_ms":S("integer")}},
   "ByGrade":obj({g:{"type":"array","items":{"type":"string","enum":["assignee","dispatcher","supervisor","manager","admin"]}} for g in ["minor","serious","severe","critical"]},["minor","serious","severe","critical"]),
   "EscalationChain":obj({l:ref("ByGrade") for l in ["warn_50","warn_75","breach"]},["warn_50","warn_75","breach"]),
   "ClosingAuthority":obj({"minor":S(),"serious":S(),"severe":S(),"critical":S()},["minor","serious","severe","critical"]),
  }}
}
open(__import__('os').path.join(__import__('os').path.dirname(__import__('os').path.abspath(__file__)), '..', 'server', 'web', 'openapi.json'), 'w').write(json.dumps(doc,ensure_ascii=False,indent=1)+"\n")
