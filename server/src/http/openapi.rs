//! The OpenAPI 3.1 document of the JSON API (`GET /openapi.json`): the routes, as written in
//! `server/web/openapi.json` (summaries, parameters, status codes), and the schema of every
//! request and response body, generated here from the Rust types the handlers take and answer
//! (`components.schemas`), so the document cannot drift from what the server does. The tests
//! check that it describes every route and no other, and that every schema it names is one of
//! these types.

use std::sync::LazyLock;

use loopwork_sync_core::sla::BookJson;
use schemars::generate::SchemaSettings;
use serde_json::{Map, Value};

use crate::closed_loop::ClosedLoopSettings;
use crate::error::ErrorBody;
use crate::escalation::EscalationChain;
use crate::http::assets::{AssetDetail, NewAsset, NewPlan, PlanView};
use crate::http::assistant::{ArticleBody, OwnerMessage, StaffReply};
use crate::http::dashboard::{Efficiency, Heatmap, Kpis, MaintenancePanel};
use crate::http::desk::{
    ActionBody, AppointmentWindow, AttachBody, BulkAssign, BulkResults, Classify, LinkBody, Me, NewView, NoteBody,
    OrderDetail, Registered, Registration, Technician, Vocabulary,
};
use crate::http::estate::{
    Caller, CallerQuery, EstateProject, ImportReport, Resident, ResidentBody, RevealedPhone, UnitDetail, UnitQuery,
};
use crate::http::privacy::{Contact, RevealedCaller};
use crate::http::return_visits::ReturnVisit;
use crate::http::sessions::{CodeRequest, CodeRequested, CodeSignIn, LoginMethods, LoginRequest, LoginResponse};
use crate::http::users::{ChangeRequest, CreatedUser, NewAccount, PasswordReset, User};
use crate::http::webhooks::{CreatedWebhook, NewWebhook};
use crate::service_desk::ServiceDesk;
use crate::store::{
    ArticleRecord, ClosingAuthorityCodes, ConversationRecord, ConversationSummary, DeviceRecord, EstateBuilding,
    EstateUnit, NotificationRecord, OrderListItem, RevealRecord, SavedView, SlaEventRecord, UserExport, WebhookRecord,
};
use crate::webhooks::Destinations;

/// The routes as written, without `components.schemas`.
const ROUTES: &str = include_str!("../../web/openapi.json");

/// The schema of every body the API takes or answers, by the name `$ref`s use.
pub fn schemas() -> Map<String, Value> {
    let mut generator =
        SchemaSettings::draft2020_12().with(|s| s.definitions_path = "/components/schemas".into()).into_generator();
    macro_rules! named {
        ($($t:ty),* $(,)?) => {
            $( generator.subschema_for::<$t>(); )*
        };
    }
    named!(
        ErrorBody,
        LoginRequest,
        LoginResponse,
        CodeRequest,
        CodeRequested,
        CodeSignIn,
        LoginMethods,
        Me,
        Vocabulary,
        Technician,
        OrderListItem,
        Registration,
        crate::http::triage::schemas::TriageRequest,
        crate::http::triage::schemas::TriageAnswer,
        ArticleBody,
        ArticleRecord,
        OwnerMessage,
        StaffReply,
        ConversationRecord,
        ConversationSummary,
        AppointmentWindow,
        Registered,
        BulkAssign,
        BulkResults,
        OrderDetail,
        ActionBody,
        Classify,
        crate::http::desk::SuggestionAnswer,
        crate::store::Suggestion,
        NoteBody,
        AttachBody,
        LinkBody,
        crate::http::audit::AuditEntry,
        Contact,
        RevealedCaller,
        RevealRecord,
        SlaEventRecord,
        UserExport,
        ReturnVisit,
        NotificationRecord,
        ClosingAuthorityCodes,
        BookJson,
        ClosedLoopSettings,
        EscalationChain,
        Destinations,
        WebhookRecord,
        NewWebhook,
        CreatedWebhook,
        Efficiency,
        Heatmap,
        Kpis,
        EstateProject,
        EstateBuilding,
        EstateUnit,
        UnitQuery,
        UnitDetail,
        ResidentBody,
        Resident,
        RevealedPhone,
        CallerQuery,
        Caller,
        ImportReport,
        SavedView,
        NewView,
        ServiceDesk,
        crate::triage::ReplyTemplates,
        loopwork_sync_core::surge::SurgeRules,
        loopwork_sync_core::signature::SignatureRules,
        loopwork_sync_core::upload::AttachmentLimits,
        loopwork_sync_core::failures::FailureSettings,
        crate::store::AssetRecord,
        NewAsset,
        AssetDetail,
        MaintenancePanel,
        crate::http::problems::ProblemView,
        crate::http::problems::ProblemOrdered,
        NewPlan,
        PlanView,
        crate::store::IncidentRecord,
        crate::http::incidents::IncidentDetail,
        crate::http::incidents::NoticeBody,
        crate::http::incidents::MergeBody,
        crate::http::incidents::SplitBody,
        crate::http::incidents::SuggestionBody,
        crate::http::incidents::OwnerNotice,
        crate::http::deviations::DeviationsNow,
        loopwork_sync_core::deviation::Standard,
        User,
        NewAccount,
        CreatedUser,
        ChangeRequest,
        PasswordReset,
        DeviceRecord,
    );
    generator.take_definitions(true)
}

/// The whole document: the routes with the generated schemas.
pub fn document() -> Value {
    let mut doc: Value = serde_json::from_str(ROUTES).expect("web/openapi.json is JSON (checked by the tests)");
    doc["components"]["schemas"] = Value::Object(schemas());
    doc
}

/// The document as served, made once.
pub static OPENAPI: LazyLock<String> = LazyLock::new(|| document().to_string());

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use serde_json::Value;

    /// Every `$ref` under `value`.
    fn refs(value: &Value, out: &mut BTreeSet<String>) {
        match value {
            Value::Object(map) => {
                for (key, v) in map {
                    match (key.as_str(), v) {
                        ("$ref", Value::String(target)) => {
                            out.insert(target.clone());
                        }
                        _ => refs(v, out),
                    }
                }
            }
            Value::Array(items) => items.iter().for_each(|v| refs(v, out)),
            _ => {}
        }
    }

    #[test]
    fn every_schema_named_is_generated_and_every_generated_one_is_used() {
        let doc = super::document();
        let schemas = doc["components"]["schemas"].as_object().expect("schemas");
        let mut named = BTreeSet::new();
        refs(&doc["paths"], &mut named);
        refs(&doc["components"]["responses"], &mut named);
        // What the paths name, and everything those schemas name in turn.
        let mut reached = BTreeSet::new();
        let mut todo: Vec<String> = named.into_iter().filter(|r| !r.starts_with("#/components/responses/")).collect();
        while let Some(target) = todo.pop() {
            let name =
                target.strip_prefix("#/components/schemas/").unwrap_or_else(|| panic!("{target} is not a schema"));
            let schema = schemas.get(name).unwrap_or_else(|| panic!("{target} is named but not generated"));
            if reached.insert(name.to_owned()) {
                let mut inner = BTreeSet::new();
                refs(schema, &mut inner);
                todo.extend(inner);
            }
        }
        let generated: BTreeSet<String> = schemas.keys().cloned().collect();
        assert_eq!(reached, generated, "schemas generated but named by no route");
    }

    #[test]
    fn every_json_body_has_a_generated_schema() {
        let doc = super::document();
        for (path, operations) in doc["paths"].as_object().expect("paths") {
            if path == "/openapi.json" {
                continue;
            }
            for (method, operation) in operations.as_object().expect("operations") {
                let mut bodies = vec![("request", &operation["requestBody"])];
                for (status, response) in operation["responses"].as_object().expect("responses") {
                    if status.starts_with('2') {
                        bodies.push(("response", response));
                    }
                }
                for (which, body) in bodies {
                    let Some(schema) = body["content"].get("application/json").map(|c| &c["schema"]) else { continue };
                    let named = schema["$ref"].is_string() || schema["items"]["$ref"].is_string();
                    assert!(named, "{method} {path}: the {which} body's schema is not generated: {schema}");
                }
            }
        }
    }
}
