//! The demo organization an empty database gets, so that `loopwork` with no configuration is a
//! working system to try. Its orders are pushed through the same path a device uses.

use loopwork_sync_core::{
    Action, Category, Channel, Grade, Identity, Kind, Location, NewOrder, OrderId, Role, WorkOrder,
};

use crate::auth;
use crate::error::ApiError;
use crate::replication::{Principal, parse_pushed};
use crate::store::{Database, NewUser};

pub const DEMO_PASSWORD: &str = "loopwork-demo";

/// A demo account; owners are bound to one unit (building, unit) of the demo project.
#[derive(Debug)]
pub struct DemoUser {
    pub login: &'static str,
    pub role: Role,
    pub name: &'static str,
    pub unit: Option<(&'static str, &'static str)>,
}

const fn user(
    login: &'static str,
    role: Role,
    name: &'static str,
    unit: Option<(&'static str, &'static str)>,
) -> DemoUser {
    DemoUser { login, role, name, unit }
}

pub const DEMO_USERS: &[DemoUser] = &[
    user("admin", Role::Admin, "系统管理员", None),
    user("kefu", Role::Dispatcher, "客服小张", None),
    user("zhuguan", Role::Supervisor, "主管老刘", None),
    user("wang", Role::Technician, "王师傅", None),
    user("li", Role::Technician, "李师傅", None),
    user("yezhu1502", Role::Owner, "业主(3-1502)", Some(("3", "3-1502"))),
    user("yezhu0801", Role::Owner, "业主(5-0801)", Some(("5", "5-0801"))),
];

pub const DEMO_PROJECT: &str = "hy-garden";

/// The demo project's estate register: buildings 1 to 12, each with entrances (单元) 1 to 5 of 18
/// floors and two units a floor (`3-1502`: entrance 3, floor 15, unit 02); residents in entrance 3
/// of building 3 and in the demo owners' units. Names and numbers are made up.
pub const DEMO_BUILDINGS: u32 = 12;

async fn seed_register(db: &dyn Database, org: &str, now_ms: i64) -> Result<(), ApiError> {
    use loopwork_sync_core::estate::{NewResident, RegisterRow, Relation};
    const SURNAMES: [&str; 8] = ["王", "李", "张", "刘", "陈", "杨", "赵", "黄"];
    const GIVEN: [&str; 6] = ["伟", "芳", "娜", "敏", "静", "强"];
    let mut rows = Vec::new();
    let resident = |name: &str, phone: String, relation| Some(NewResident { name: name.into(), phone, relation });
    for building in 1..=DEMO_BUILDINGS {
        for entrance in 1..=5 {
            for floor in 1..=18 {
                for room in 1..=2 {
                    let unit = format!("{entrance}-{floor:02}{room:02}");
                    let n = (floor * 2 + room) as usize;
                    let people = match (building, unit.as_str()) {
                        (3, "3-1502") => vec![
                            resident("王芳", "13800138005".into(), Relation::Owner),
                            resident("王小明", "13900139001".into(), Relation::Family),
                        ],
                        (5, "5-0801") => vec![resident("陈静", "13800138006".into(), Relation::Owner)],
                        (3, _) if entrance == 3 => vec![resident(
                            &format!("{}{}", SURNAMES[n % SURNAMES.len()], GIVEN[n % GIVEN.len()]),
                            format!("139{:08}", 3_000_000 + n),
                            Relation::Owner,
                        )],
                        _ => vec![None],
                    };
                    for resident in people {
                        let row = RegisterRow {
                            row: 0,
                            project: None,
                            building: building.to_string(),
                            unit: unit.clone(),
                            resident,
                        };
                        rows.push((DEMO_PROJECT.to_owned(), row));
                    }
                }
            }
        }
    }
    db.import_register(org, &rows, true, now_ms).await?;
    Ok(())
}

/// Creates the demo organization and returns the text that tells a person how to log in.
pub async fn seed(db: &dyn Database, now_ms: i64) -> Result<String, ApiError> {
    let org = db.create_organization("和园物业(演示) Heyuan Property (demo)", now_ms).await?;
    db.create_project(&org, DEMO_PROJECT, "和园小区").await?;
    let hash = tokio::task::spawn_blocking(|| auth::hash_password(DEMO_PASSWORD))
        .await
        .map_err(|_| ApiError::internal())??;
    let mut ids = Vec::new();
    for (i, DemoUser { login, role, name, unit }) in DEMO_USERS.iter().enumerate() {
        let user = NewUser {
            org: org.clone(),
            login: (*login).into(),
            password_hash: hash.clone(),
            role: *role,
            display_name: (*name).into(),
            phone: Some(format!("1380013{:04}", 8000 + i)),
        };
        let id = db.create_user(&user, now_ms).await?;
        if let Some((building, unit)) = unit {
            db.bind_unit(id, DEMO_PROJECT, building, unit).await?;
        }
        ids.push(id);
    }
    seed_register(db, &org, now_ms).await?;
    // The technicians' trades (工种): 王师傅 water and electricity, 李师傅 lifts and doors.
    for (id, trades) in [(ids[3], ["water_electric", "public_facilities"]), (ids[4], ["elevator", "doors_windows"])] {
        let change = crate::store::UserChange {
            trades: Some(trades.iter().map(|t| (*t).to_owned()).collect()),
            ..Default::default()
        };
        db.change_user(&org, &id.to_string(), &change, now_ms).await?;
    }
    let desk = crate::service_desk::ServiceDesk {
        phone: Some("4008108888".into()),
        hours: Some("24小时服务热线".into()),
    };
    crate::settings::write(db, &org, desk).await?;
    let kefu = db.user_by_login("kefu").await?.ok_or_else(ApiError::internal)?;
    let device = db.register_device(&kefu, "demo seeding", &auth::token_hash(&auth::new_token()), now_ms).await?;
    let desk = Identity::new(kefu.id, Role::Dispatcher, device);
    let principal = Principal { user: kefu.id, role: Role::Dispatcher, org: org.clone(), device, project_bound: false };
    let (wang, owner_1502, owner_0801) = (ids[3], ids[5], ids[6]);

    let orders = [
        (
            Kind::Repair,
            Category::WaterElectric,
            Grade::Serious,
            "3",
            Some("3-1502"),
            "厨房水管接头漏水,地面有积水",
            owner_1502,
            Some(wang),
        ),
        (Kind::Repair, Category::Elevator, Grade::Severe, "5", None, "5号楼2号电梯异响,停靠不平", owner_0801, None),
        (
            Kind::Complaint,
            Category::Noise,
            Grade::Minor,
            "5",
            Some("5-0801"),
            "楼上晚上十点后仍在装修",
            owner_0801,
            None,
        ),
        (Kind::Repair, Category::DoorsWindows, Grade::Minor, "3", Some("3-1502"), "阳台推拉门关不严", owner_1502, None),
    ];
    for (kind, category, grade, building, unit, description, reporter, assignee) in orders {
        let location = match unit {
            Some(unit) => Location::unit(DEMO_PROJECT, building, unit),
            None => Location {
                project: DEMO_PROJECT.into(),
                building: Some(building.into()),
                unit: None,
                area: Some("2号电梯".into()),
            },
        };
        let new = NewOrder {
            kind,
            category,
            grade,
            channel: Channel::Hotline,
            location,
            description: description.into(),
            reporter,
            occurred_at_ms: None,
        };
        let mut order = WorkOrder::create_with_id(OrderId::new(), &new, &desk, now_ms)?;
        if let Some(tech) = assignee {
            order.transition(&desk, Action::Assign(tech), None, now_ms)?;
        }
        let changes = order
            .changes_since(&[])
            .iter()
            .map(|(_, bytes)| parse_pushed(&principal, bytes))
            .collect::<Result<Vec<_>, _>>()?;
        db.push(&principal, &[(order.id(), changes)], &[], now_ms).await?;
    }
    let mut text = String::from("演示数据已创建 / demo organization created. 登录 / log in (password: ");
    text.push_str(DEMO_PASSWORD);
    text.push_str("):\n");
    for DemoUser { login, role, name, .. } in DEMO_USERS {
        text.push_str(&format!("  {login:<10} {:<10} {name}\n", role.code()));
    }
    text.push_str("  curl -s -X POST http://HOST/api/v1/login -H 'content-type: application/json' \\\n");
    text.push_str(&format!("       -d '{{\"login\":\"kefu\",\"password\":\"{DEMO_PASSWORD}\"}}'\n"));
    Ok(text)
}
