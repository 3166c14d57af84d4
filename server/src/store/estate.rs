//! The estate register (房屋档案): each project's units by building, and their residents.
//! Names and phones are personal data: this concern hands them to `http/estate.rs` only, which
//! masks phones and logs every reveal. The rules (phones, codes, sheets) are sync-core's
//! `estate` module.

use loopwork_sync_core::Location;
use loopwork_sync_core::estate::{NewResident, RegisterRow, natural_cmp};

use super::*;

/// A building of a project: its units and the residents registered in them.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, schemars::JsonSchema)]
pub struct EstateBuilding {
    pub building: String,
    pub units: i64,
    pub residents: i64,
}

/// A unit of a building: its residents and its open orders.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, schemars::JsonSchema)]
pub struct EstateUnit {
    pub building: String,
    pub unit: String,
    pub residents: i64,
    pub open_orders: i64,
}

/// A resident as stored, with the full phone (the handlers mask it).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ResidentRecord {
    pub id: String,
    pub project: String,
    pub building: String,
    pub unit: String,
    pub name: String,
    pub phone: String,
    pub relation: String,
    pub updated_at: i64,
}

/// An order of a unit, newest first (the unit's history beside a contact card).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, schemars::JsonSchema)]
pub struct UnitOrder {
    pub id: String,
    pub number: String,
    pub kind: String,
    pub category: String,
    pub status: String,
    pub is_open: bool,
    pub created_at: i64,
}

/// What the register says about a place an order names.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PlaceCheck {
    /// The project has no register: any place is taken.
    NoRegister,
    /// The register knows the place; a unit given without its building is in this building.
    Known { building: Option<String> },
    /// The register has no such unit (or building, for a common area of a building).
    Unknown,
    /// A unit given without its building that several buildings have.
    Ambiguous,
}

/// What an import found, or did: units and residents new, changed, unchanged.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, schemars::JsonSchema)]
pub struct ImportCounts {
    pub units_new: u64,
    pub units_existing: u64,
    pub residents_new: u64,
    pub residents_updated: u64,
    pub residents_unchanged: u64,
}

/// How a change to a resident or a unit ended.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum EstateChange {
    Done,
    /// The unit (or resident) is not in the register.
    Unknown,
    /// Another resident of the unit has this phone number.
    PhoneTaken,
    /// A unit that still has residents.
    HasResidents,
    /// A unit that is already in the register.
    Exists,
}

#[async_trait]
pub trait Estate: Send + Sync {
    /// The project's buildings, in natural order (1, 2, …, 10).
    async fn estate_buildings(&self, org: &str, project: &str) -> Result<Vec<EstateBuilding>>;
    /// The building's units, in natural order.
    async fn estate_units(&self, org: &str, project: &str, building: &str) -> Result<Vec<EstateUnit>>;
    /// The unit's residents (`None`: the unit is not in the register).
    async fn estate_residents(
        &self,
        org: &str,
        project: &str,
        building: &str,
        unit: &str,
    ) -> Result<Option<Vec<ResidentRecord>>>;
    /// The unit's orders, newest first, at most `limit`.
    async fn unit_orders(
        &self,
        org: &str,
        project: &str,
        building: &str,
        unit: &str,
        limit: i64,
    ) -> Result<Vec<UnitOrder>>;
    /// The residents with this phone number (as `normalize_phone` writes it), in any project.
    async fn residents_by_phone(&self, org: &str, phone: &str) -> Result<Vec<ResidentRecord>>;
    async fn resident(&self, org: &str, id: &str) -> Result<Option<ResidentRecord>>;
    async fn add_unit(&self, org: &str, project: &str, building: &str, unit: &str, now_ms: i64)
    -> Result<EstateChange>;
    async fn remove_unit(&self, org: &str, project: &str, building: &str, unit: &str) -> Result<EstateChange>;
    /// Adds a resident to a unit of the register; their id.
    async fn add_resident(
        &self,
        org: &str,
        project: &str,
        building: &str,
        unit: &str,
        resident: &NewResident,
        now_ms: i64,
    ) -> Result<Result<String, EstateChange>>;
    async fn update_resident(&self, org: &str, id: &str, resident: &NewResident, now_ms: i64) -> Result<EstateChange>;
    async fn remove_resident(&self, org: &str, id: &str) -> Result<EstateChange>;
    /// Logs that the principal saw the resident's full phone number.
    async fn log_resident_reveal(&self, principal: &Principal, resident: &str, now_ms: i64) -> Result<()>;
    /// Who saw the resident's full phone number, oldest first.
    async fn resident_reveals(&self, org: &str, resident: &str) -> Result<Vec<RevealRecord>>;
    /// What the register says about an order's place.
    async fn check_place(&self, org: &str, location: &Location) -> Result<PlaceCheck>;
    /// Counts what an import of `rows` (each with its project's code) adds and changes, and with
    /// `apply` writes it, in one transaction: units added, residents added or updated (by unit
    /// and phone). Nothing is deleted.
    async fn import_register(
        &self,
        org: &str,
        rows: &[(String, RegisterRow)],
        apply: bool,
        now_ms: i64,
    ) -> Result<ImportCounts>;
}

const RESIDENT: &str = "id, project, building, unit, name, phone, relation, updated_at";

fn resident_of<R: Row>(row: &R) -> Result<ResidentRecord>
where
    for<'s> &'s str: sqlx::ColumnIndex<R>,
    i64: for<'r> sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
    String: for<'r> sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
{
    Ok(ResidentRecord {
        id: row.try_get("id")?,
        project: row.try_get("project")?,
        building: row.try_get("building")?,
        unit: row.try_get("unit")?,
        name: row.try_get("name")?,
        phone: row.try_get("phone")?,
        relation: row.try_get("relation")?,
        updated_at: row.try_get("updated_at")?,
    })
}

#[async_trait]
impl<B: Backend> Estate for Store<B>
where
    for<'c> &'c mut B::Connection: sqlx::Executor<'c, Database = B>,
    usize: sqlx::ColumnIndex<B::Row>,
    for<'s> &'s str: sqlx::ColumnIndex<B::Row> + sqlx::Encode<'s, B> + sqlx::Type<B>,
    for<'s> &'s [u8]: sqlx::Encode<'s, B> + sqlx::Type<B>,
    i64: Column<B>,
    i32: Column<B>,
    bool: Column<B>,
    String: Column<B>,
    Vec<u8>: Column<B>,
    Option<i64>: Column<B>,
    Option<String>: Column<B>,
    Option<Vec<u8>>: Column<B>,
    for<'s> Option<&'s str>: sqlx::Encode<'s, B>,
{
    async fn estate_buildings(&self, org: &str, project: &str) -> Result<Vec<EstateBuilding>> {
        let mut buildings: Vec<EstateBuilding> = sqlx::query_as::<_, (String, i64, i64)>(
            "SELECT u.building, COUNT(*),
                    (SELECT COUNT(*) FROM estate_residents r
                     WHERE r.org_id = $1 AND r.project = $2 AND r.building = u.building)
             FROM estate_units u WHERE u.org_id = $1 AND u.project = $2 GROUP BY u.building",
        )
        .bind(org)
        .bind(project)
        .fetch_all(&self.pool)
        .await?
        .into_iter()
        .map(|(building, units, residents)| EstateBuilding { building, units, residents })
        .collect();
        buildings.sort_by(|a, b| natural_cmp(&a.building, &b.building));
        Ok(buildings)
    }

    async fn estate_units(&self, org: &str, project: &str, building: &str) -> Result<Vec<EstateUnit>> {
        let mut units: Vec<EstateUnit> = sqlx::query_as::<_, (String, i64, i64)>(
            "SELECT u.unit,
                    (SELECT COUNT(*) FROM estate_residents r WHERE r.org_id = u.org_id AND r.project = u.project
                       AND r.building = u.building AND r.unit = u.unit),
                    (SELECT COUNT(*) FROM orders o WHERE o.org_id = u.org_id AND o.project = u.project
                       AND o.building = u.building AND o.unit = u.unit AND o.is_open = TRUE)
             FROM estate_units u WHERE u.org_id = $1 AND u.project = $2 AND u.building = $3",
        )
        .bind(org)
        .bind(project)
        .bind(building)
        .fetch_all(&self.pool)
        .await?
        .into_iter()
        .map(|(unit, residents, open_orders)| EstateUnit {
            building: building.to_owned(),
            unit,
            residents,
            open_orders,
        })
        .collect();
        units.sort_by(|a, b| natural_cmp(&a.unit, &b.unit));
        Ok(units)
    }

    async fn estate_residents(
        &self,
        org: &str,
        project: &str,
        building: &str,
        unit: &str,
    ) -> Result<Option<Vec<ResidentRecord>>> {
        let known: bool = sqlx::query_scalar(
            "SELECT EXISTS (SELECT 1 FROM estate_units WHERE org_id = $1 AND project = $2 AND building = $3 AND unit = $4)",
        )
        .bind(org)
        .bind(project)
        .bind(building)
        .bind(unit)
        .fetch_one(&self.pool)
        .await?;
        if !known {
            return Ok(None);
        }
        let rows = sqlx::query(AssertSqlSafe(format!(
            "SELECT {RESIDENT} FROM estate_residents
             WHERE org_id = $1 AND project = $2 AND building = $3 AND unit = $4 ORDER BY CASE relation WHEN 'owner' THEN 0 WHEN 'tenant' THEN 1 ELSE 2 END, created_at, id"
        )))
        .bind(org)
        .bind(project)
        .bind(building)
        .bind(unit)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(resident_of).collect::<Result<Vec<_>>>().map(Some)
    }

    async fn unit_orders(
        &self,
        org: &str,
        project: &str,
        building: &str,
        unit: &str,
        limit: i64,
    ) -> Result<Vec<UnitOrder>> {
        let rows = sqlx::query_as::<_, (String, String, String, String, String, bool, i64)>(
            "SELECT id, number, kind, category, status, is_open, created_at FROM orders
             WHERE org_id = $1 AND project = $2 AND building = $3 AND unit = $4
             ORDER BY created_at DESC, id LIMIT $5",
        )
        .bind(org)
        .bind(project)
        .bind(building)
        .bind(unit)
        .bind(limit)
        .fetch_all(&self.pool)
        .await?;
        Ok(rows
            .into_iter()
            .map(|(id, number, kind, category, status, is_open, created_at)| UnitOrder {
                id,
                number,
                kind,
                category,
                status,
                is_open,
                created_at,
            })
            .collect())
    }

    async fn residents_by_phone(&self, org: &str, phone: &str) -> Result<Vec<ResidentRecord>> {
        let rows = sqlx::query(AssertSqlSafe(format!(
            "SELECT {RESIDENT} FROM estate_residents WHERE org_id = $1 AND phone = $2 ORDER BY project, building, unit"
        )))
        .bind(org)
        .bind(phone)
        .fetch_all(&self.pool)
        .await?;
        let mut residents = rows.iter().map(resident_of).collect::<Result<Vec<_>>>()?;
        residents.sort_by(|a, b| {
            a.project
                .cmp(&b.project)
                .then_with(|| natural_cmp(&a.building, &b.building))
                .then_with(|| natural_cmp(&a.unit, &b.unit))
        });
        Ok(residents)
    }

    async fn resident(&self, org: &str, id: &str) -> Result<Option<ResidentRecord>> {
        let row = sqlx::query(AssertSqlSafe(format!(
            "SELECT {RESIDENT} FROM estate_residents WHERE org_id = $1 AND id = $2"
        )))
        .bind(org)
        .bind(id)
        .fetch_optional(&self.pool)
        .await?;
        row.as_ref().map(resident_of).transpose()
    }

    async fn add_unit(
        &self,
        org: &str,
        project: &str,
        building: &str,
        unit: &str,
        now_ms: i64,
    ) -> Result<EstateChange> {
        let done = sqlx::query(
            "INSERT INTO estate_units (org_id, project, building, unit, created_at) VALUES ($1, $2, $3, $4, $5)
             ON CONFLICT DO NOTHING",
        )
        .bind(org)
        .bind(project)
        .bind(building)
        .bind(unit)
        .bind(now_ms)
        .execute(&self.pool)
        .await?;
        Ok(if done.rows_affected() == 1 { EstateChange::Done } else { EstateChange::Exists })
    }

    async fn remove_unit(&self, org: &str, project: &str, building: &str, unit: &str) -> Result<EstateChange> {
        let mut tx = B::begin_write(&self.pool).await?;
        let residents: i64 = sqlx::query_scalar(
            "SELECT COUNT(*) FROM estate_residents WHERE org_id = $1 AND project = $2 AND building = $3 AND unit = $4",
        )
        .bind(org)
        .bind(project)
        .bind(building)
        .bind(unit)
        .fetch_one(&mut *tx)
        .await?;
        if residents > 0 {
            return Ok(EstateChange::HasResidents);
        }
        let done =
            sqlx::query("DELETE FROM estate_units WHERE org_id = $1 AND project = $2 AND building = $3 AND unit = $4")
                .bind(org)
                .bind(project)
                .bind(building)
                .bind(unit)
                .execute(&mut *tx)
                .await?;
        tx.commit().await?;
        Ok(if done.rows_affected() == 1 { EstateChange::Done } else { EstateChange::Unknown })
    }

    async fn add_resident(
        &self,
        org: &str,
        project: &str,
        building: &str,
        unit: &str,
        resident: &NewResident,
        now_ms: i64,
    ) -> Result<Result<String, EstateChange>> {
        let id = uuid::Uuid::now_v7().to_string();
        let mut tx = B::begin_write(&self.pool).await?;
        let (known, taken): (bool, bool) = sqlx::query_as(
            "SELECT EXISTS (SELECT 1 FROM estate_units WHERE org_id = $1 AND project = $2 AND building = $3 AND unit = $4),
                    EXISTS (SELECT 1 FROM estate_residents WHERE org_id = $1 AND project = $2 AND building = $3
                              AND unit = $4 AND phone = $5)",
        )
        .bind(org)
        .bind(project)
        .bind(building)
        .bind(unit)
        .bind(resident.phone.as_str())
        .fetch_one(&mut *tx)
        .await?;
        if !known {
            return Ok(Err(EstateChange::Unknown));
        }
        if taken {
            return Ok(Err(EstateChange::PhoneTaken));
        }
        sqlx::query(
            "INSERT INTO estate_residents
               (id, org_id, project, building, unit, name, phone, relation, created_at, updated_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $9)",
        )
        .bind(id.as_str())
        .bind(org)
        .bind(project)
        .bind(building)
        .bind(unit)
        .bind(resident.name.as_str())
        .bind(resident.phone.as_str())
        .bind(resident.relation.code())
        .bind(now_ms)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(Ok(id))
    }

    async fn update_resident(&self, org: &str, id: &str, resident: &NewResident, now_ms: i64) -> Result<EstateChange> {
        let mut tx = B::begin_write(&self.pool).await?;
        let taken: Option<bool> = sqlx::query_scalar(
            "SELECT EXISTS (SELECT 1 FROM estate_residents o WHERE o.org_id = r.org_id AND o.project = r.project
                              AND o.building = r.building AND o.unit = r.unit AND o.phone = $3 AND o.id <> r.id)
             FROM estate_residents r WHERE r.org_id = $1 AND r.id = $2",
        )
        .bind(org)
        .bind(id)
        .bind(resident.phone.as_str())
        .fetch_optional(&mut *tx)
        .await?;
        match taken {
            None => return Ok(EstateChange::Unknown),
            Some(true) => return Ok(EstateChange::PhoneTaken),
            Some(false) => {}
        }
        sqlx::query(
            "UPDATE estate_residents SET name = $3, phone = $4, relation = $5, updated_at = $6
             WHERE org_id = $1 AND id = $2",
        )
        .bind(org)
        .bind(id)
        .bind(resident.name.as_str())
        .bind(resident.phone.as_str())
        .bind(resident.relation.code())
        .bind(now_ms)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(EstateChange::Done)
    }

    async fn remove_resident(&self, org: &str, id: &str) -> Result<EstateChange> {
        let done = sqlx::query("DELETE FROM estate_residents WHERE org_id = $1 AND id = $2")
            .bind(org)
            .bind(id)
            .execute(&self.pool)
            .await?;
        Ok(if done.rows_affected() == 1 { EstateChange::Done } else { EstateChange::Unknown })
    }

    async fn log_resident_reveal(&self, principal: &Principal, resident: &str, now_ms: i64) -> Result<()> {
        sqlx::query(
            "INSERT INTO resident_reveals (org_id, resident_id, user_id, device_id, revealed_at)
             VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(principal.org.as_str())
        .bind(resident)
        .bind(principal.user.to_string())
        .bind(principal.device.to_string())
        .bind(now_ms)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    async fn resident_reveals(&self, org: &str, resident: &str) -> Result<Vec<RevealRecord>> {
        let rows: Vec<(String, String, i64)> = sqlx::query_as(
            "SELECT user_id, device_id, revealed_at FROM resident_reveals
             WHERE resident_id = $1 AND org_id = $2 ORDER BY revealed_at",
        )
        .bind(resident)
        .bind(org)
        .fetch_all(&self.pool)
        .await?;
        Ok(rows
            .into_iter()
            .map(|(user_id, device_id, revealed_at_ms)| RevealRecord { user_id, device_id, revealed_at_ms })
            .collect())
    }

    async fn check_place(&self, org: &str, location: &Location) -> Result<PlaceCheck> {
        let registered: bool =
            sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM estate_units WHERE org_id = $1 AND project = $2)")
                .bind(org)
                .bind(location.project.as_str())
                .fetch_one(&self.pool)
                .await?;
        if !registered {
            return Ok(PlaceCheck::NoRegister);
        }
        let Some(unit) = &location.unit else {
            // A common area: of the project, or of a building the register knows.
            let Some(building) = &location.building else { return Ok(PlaceCheck::Known { building: None }) };
            let known: bool = sqlx::query_scalar(
                "SELECT EXISTS (SELECT 1 FROM estate_units WHERE org_id = $1 AND project = $2 AND building = $3)",
            )
            .bind(org)
            .bind(location.project.as_str())
            .bind(building.as_str())
            .fetch_one(&self.pool)
            .await?;
            return Ok(if known { PlaceCheck::Known { building: None } } else { PlaceCheck::Unknown });
        };
        let buildings: Vec<String> = sqlx::query_scalar(
            "SELECT building FROM estate_units WHERE org_id = $1 AND project = $2 AND unit = $3 LIMIT 50",
        )
        .bind(org)
        .bind(location.project.as_str())
        .bind(unit.as_str())
        .fetch_all(&self.pool)
        .await?;
        Ok(match (&location.building, buildings.as_slice()) {
            (Some(building), found) if found.contains(building) => PlaceCheck::Known { building: None },
            (Some(_), _) | (None, []) => PlaceCheck::Unknown,
            (None, [only]) => PlaceCheck::Known { building: Some(only.clone()) },
            (None, _) => PlaceCheck::Ambiguous,
        })
    }

    async fn import_register(
        &self,
        org: &str,
        rows: &[(String, RegisterRow)],
        apply: bool,
        now_ms: i64,
    ) -> Result<ImportCounts> {
        let mut tx = B::begin_write(&self.pool).await?;
        let projects: HashSet<&str> = rows.iter().map(|(p, _)| p.as_str()).collect();
        let mut units: HashSet<(String, String, String)> = HashSet::new();
        let mut residents: HashMap<(String, String, String, String), (String, String)> = HashMap::new();
        for project in &projects {
            for (building, unit) in sqlx::query_as::<_, (String, String)>(
                "SELECT building, unit FROM estate_units WHERE org_id = $1 AND project = $2",
            )
            .bind(org)
            .bind(*project)
            .fetch_all(&mut *tx)
            .await?
            {
                units.insert(((*project).to_owned(), building, unit));
            }
            for (building, unit, phone, name, relation) in sqlx::query_as::<_, (String, String, String, String, String)>(
                "SELECT building, unit, phone, name, relation FROM estate_residents WHERE org_id = $1 AND project = $2",
            )
            .bind(org)
            .bind(*project)
            .fetch_all(&mut *tx)
            .await?
            {
                residents.insert(((*project).to_owned(), building, unit, phone), (name, relation));
            }
        }
        let mut counts = ImportCounts::default();
        let mut new_units: Vec<(&str, &str, &str)> = Vec::new();
        let mut seen_units: HashSet<(&str, &str, &str)> = HashSet::new();
        let mut seen_residents: HashSet<(String, String, String, String)> = HashSet::new();
        let mut changed: Vec<(&str, &RegisterRow, &NewResident)> = Vec::new();
        for (project, row) in rows {
            let unit = (project.as_str(), row.building.as_str(), row.unit.as_str());
            if seen_units.insert(unit) {
                if units.contains(&(project.clone(), row.building.clone(), row.unit.clone())) {
                    counts.units_existing += 1;
                } else {
                    counts.units_new += 1;
                    new_units.push(unit);
                }
            }
            let Some(resident) = &row.resident else { continue };
            let key = (project.clone(), row.building.clone(), row.unit.clone(), resident.phone.clone());
            if !seen_residents.insert(key.clone()) {
                // The same person twice (a project named by its code and by its name): the first row counts.
                continue;
            }
            match residents.get(&key) {
                None => counts.residents_new += 1,
                Some((name, relation)) if *name == resident.name && relation == resident.relation.code() => {
                    counts.residents_unchanged += 1;
                    continue;
                }
                Some(_) => counts.residents_updated += 1,
            }
            changed.push((project.as_str(), row, resident));
        }
        if !apply {
            return Ok(counts);
        }
        for chunk in new_units.chunks(200) {
            let values = (0..chunk.len())
                .map(|i| format!("($1, ${}, ${}, ${}, $2)", 3 * i + 3, 3 * i + 4, 3 * i + 5))
                .collect::<Vec<_>>()
                .join(", ");
            let sql = format!(
                "INSERT INTO estate_units (org_id, project, building, unit, created_at) VALUES {values}
                 ON CONFLICT DO NOTHING"
            );
            let mut insert = sqlx::query(AssertSqlSafe(sql)).bind(org).bind(now_ms);
            for (project, building, unit) in chunk {
                insert = insert.bind(*project).bind(*building).bind(*unit);
            }
            insert.execute(&mut *tx).await?;
        }
        for chunk in changed.chunks(100) {
            let values = (0..chunk.len())
                .map(|i| {
                    let b = 7 * i + 3;
                    format!(
                        "(${b}, $1, ${}, ${}, ${}, ${}, ${}, ${}, $2, $2)",
                        b + 1,
                        b + 2,
                        b + 3,
                        b + 4,
                        b + 5,
                        b + 6
                    )
                })
                .collect::<Vec<_>>()
                .join(", ");
            let sql = format!(
                "INSERT INTO estate_residents
                   (id, org_id, project, building, unit, name, phone, relation, created_at, updated_at)
                 VALUES {values}
                 ON CONFLICT (org_id, project, building, unit, phone)
                 DO UPDATE SET name = excluded.name, relation = excluded.relation, updated_at = excluded.updated_at"
            );
            let mut insert = sqlx::query(AssertSqlSafe(sql)).bind(org).bind(now_ms);
            for (project, row, resident) in chunk {
                insert = insert
                    .bind(uuid::Uuid::now_v7().to_string())
                    .bind(*project)
                    .bind(row.building.as_str())
                    .bind(row.unit.as_str())
                    .bind(resident.name.as_str())
                    .bind(resident.phone.as_str())
                    .bind(resident.relation.code());
            }
            insert.execute(&mut *tx).await?;
        }
        tx.commit().await?;
        Ok(counts)
    }
}
