//! The settings' move into one table (`org_settings`): an organization's closing authority, SLA
//! book, closed-loop wait, escalation chain and webhook destinations, stored in their old tables
//! and names, read the same after the migration, on both backends.

use std::sync::Arc;

use loopwork_server::closed_loop::ClosedLoopSettings;
use loopwork_server::escalation::EscalationChain;
use loopwork_server::settings;
use loopwork_server::store::{ClosingAuthorityCodes, Database};
use loopwork_server::webhooks::Destinations;
use loopwork_sync_core::sla::{BookJson, SlaBook, book_to_json};
use loopwork_tests::{Backend, TestDatabase};
use sqlx::migrate::Migrator;

async fn settings_survive_the_move(backend: Backend) {
    let database = TestDatabase::new(backend).await;
    let (dir, before_the_move) = match backend {
        Backend::Sqlite => ("sqlite", 15),
        Backend::Postgres => ("postgres", 16),
    };
    let migrations = loopwork_tests::tools::workspace().join("migrations").join(dir);
    let migrator = Migrator::new(migrations.as_path()).await.expect("migrations");
    let url = match backend {
        Backend::Sqlite => format!("{}?mode=rwc", database.url),
        Backend::Postgres => database.url.clone(),
    };
    let mut chain = EscalationChain::default();
    chain.warn_50.minor = vec!["supervisor".into()];
    let chain_json = serde_json::to_string(&chain).expect("chain");
    let mut book: BookJson = book_to_json(&SlaBook::defaults());
    let book_json = {
        let mut value = serde_json::to_value(&book).expect("book");
        value["policies"][0]["response"]["minutes"] = 45.into();
        book = serde_json::from_value(value.clone()).expect("edited book");
        value.to_string()
    };
    let old_rows = [
        "INSERT INTO organizations (id, name, created_at) VALUES ('org-a', 'A', 0), ('org-b', 'B', 0)".to_owned(),
        "INSERT INTO closing_authority (org_id, grade, min_role) VALUES ('org-a', 'minor', 'supervisor'), ('org-a', 'critical', 'admin')".to_owned(),
        format!("INSERT INTO sla_books (org_id, book) VALUES ('org-a', '{book_json}')"),
        "INSERT INTO closed_loop_settings (org_id, auto_confirm_days) VALUES ('org-a', 7)".to_owned(),
        format!("INSERT INTO org_settings (org_id, name, value) VALUES ('org-a', 'escalation_chain', '{chain_json}')"),
        r#"INSERT INTO org_settings (org_id, name, value) VALUES ('org-a', 'webhook_destinations', '{"allow_private":true}')"#.to_owned(),
    ];
    match backend {
        Backend::Sqlite => {
            let pool = sqlx::SqlitePool::connect(&url).await.expect("sqlite");
            migrator.run_to(before_the_move, &pool).await.expect("old schema");
            for sql in &old_rows {
                sqlx::query(sqlx::AssertSqlSafe(sql.clone())).execute(&pool).await.expect(sql);
            }
            pool.close().await;
        }
        Backend::Postgres => {
            let pool = sqlx::PgPool::connect(&url).await.expect("postgres");
            migrator.run_to(before_the_move, &pool).await.expect("old schema");
            for sql in &old_rows {
                sqlx::query(sqlx::AssertSqlSafe(sql.clone())).execute(&pool).await.expect(sql);
            }
            pool.close().await;
        }
    }

    let db: Arc<dyn Database> = loopwork_server::writer::open(&database.url).await.expect("open migrates");
    let closing = settings::read::<ClosingAuthorityCodes>(&*db, "org-a").await.expect("closing");
    assert_eq!(
        closing,
        ClosingAuthorityCodes {
            minor: "supervisor".into(),
            serious: "supervisor".into(),
            severe: "manager".into(),
            critical: "admin".into()
        },
        "grades not stored keep their default"
    );
    let authority = db.closing_authority("org-a").await.expect("writer's read");
    assert_eq!(authority.critical, loopwork_sync_core::Role::Admin);
    let read_book = settings::read::<BookJson>(&*db, "org-a").await.expect("book");
    assert_eq!(serde_json::to_value(&read_book).unwrap(), serde_json::to_value(&book).unwrap());
    assert_eq!(settings::sla_book(&*db, "org-a").await.expect("book").policies[0].response.minutes, 45);
    assert_eq!(settings::read::<ClosedLoopSettings>(&*db, "org-a").await.expect("closed loop").auto_confirm_days, 7);
    assert_eq!(settings::read::<EscalationChain>(&*db, "org-a").await.expect("chain"), chain);
    assert!(settings::read::<Destinations>(&*db, "org-a").await.expect("destinations").allow_private);
    // An organization that set nothing reads the seeded values.
    assert_eq!(settings::read::<ClosedLoopSettings>(&*db, "org-b").await.expect("seeded").auto_confirm_days, 3);
    assert_eq!(settings::read::<EscalationChain>(&*db, "org-b").await.expect("seeded"), EscalationChain::default());
    assert!(!settings::read::<Destinations>(&*db, "org-b").await.expect("seeded").allow_private);
    drop(db);
    database.drop_database().await;
}

#[tokio::test]
async fn settings_survive_the_move_sqlite() {
    settings_survive_the_move(Backend::Sqlite).await;
}

#[tokio::test]
async fn settings_survive_the_move_postgres() {
    settings_survive_the_move(Backend::Postgres).await;
}
