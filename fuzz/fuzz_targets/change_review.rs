//! A pushed change, as the server judges it: parsed (checksum, canonical encoding), merged into
//! an order and reviewed by the authority (`authority::review`, what the server's merge runs)
//! as a technician, an owner or a dispatcher. Nothing may panic; a change that merges must
//! leave an order that validates, saves, and loads to the same heads.
#![no_main]

use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use loopwork_sync_core::authority::{self, Author, ClosingAuthority, Prior};
use loopwork_sync_core::work_order::parse_change;
use loopwork_sync_core::{
    Action, Category, Channel, DeviceId, Grade, Identity, Kind, Location, NewOrder, Role, UserId, WorkOrder,
};

struct Base {
    order: WorkOrder,
    authors: Vec<Identity>,
    server: Identity,
}

fn id<T: std::str::FromStr>(s: &str) -> T
where
    T::Err: std::fmt::Debug,
{
    s.parse().expect("uuid")
}

fn base() -> &'static Base {
    static BASE: OnceLock<Base> = OnceLock::new();
    BASE.get_or_init(|| {
        // The ids of sync-core/tests/fixtures, so that the fixtures' changes are seeds.
        let desk = Identity::new(
            id("0193a000-0000-7000-8000-0000000000d1"),
            Role::Dispatcher,
            id("0193a000-0000-7000-8000-0000000000d2"),
        );
        let tech = Identity::new(
            id("0193a000-0000-7000-8000-0000000000e1"),
            Role::Technician,
            id("0193a000-0000-7000-8000-0000000000e2"),
        );
        let owner = Identity::new(id("0193a000-0000-7000-8000-0000000000f1"), Role::Owner, DeviceId::new());
        let new = NewOrder {
            kind: Kind::Repair,
            category: Category::WaterElectric,
            grade: Grade::Serious,
            channel: Channel::Hotline,
            location: Location::unit("hy-garden", "3", "3-1502"),
            description: "卫生间天花板渗水".into(),
            reporter: owner.user,
            occurred_at_ms: Some(1_796_000_000_000),
        };
        let mut order =
            WorkOrder::create_with_id(id("0193a000-0000-7000-8000-000000000001"), &new, &desk, 1_796_000_060_000)
                .expect("order");
        order.transition(&desk, Action::Assign(tech.user), None, 1_796_000_120_000).expect("assign");
        Base {
            order,
            authors: vec![tech, owner, desk],
            server: Identity::new(UserId::new(), Role::System, DeviceId::new()),
        }
    })
}

fuzz_target!(|data: &[u8]| {
    quiet_caught_panics();
    let Some((&who, bytes)) = data.split_first() else { return };
    let Ok(change) = parse_change(bytes) else { return };
    let base = base();
    let author =
        Author { identity: base.authors[who as usize % base.authors.len()], closing: ClosingAuthority::default() };
    let prior = Prior::of(&base.order, base.order.transitions());
    let Ok(mut order) =
        base.order.clone().with_device(base.server.device).with_changes_unvalidated(vec![change.clone()])
    else {
        return;
    };
    if authority::review(&mut order, &[change], &author, &base.server, prior.as_ref(), 1_796_000_300_000).is_err() {
        return;
    }
    if order.validate().is_ok() {
        let loaded = WorkOrder::load(&order.save()).expect("a merged order loads");
        assert_eq!(loaded.heads(), order.heads(), "saved and loaded, the order has the same heads");
        let _ = loaded.state();
        let _ = loopwork_sync_core::timeline::change_log(&loaded);
    }
});

/// libfuzzer-sys aborts on every panic, even one the code catches: sync-core turns panics of
/// Automerge's decoders into errors (`work_order::contained`), which is the behaviour under test.
/// A panic that escapes still aborts: libfuzzer-sys checks the target's result itself. With
/// `LOOPWORK_FUZZ_PANICS=1` every panic is printed (to see why a saved input fails).
fn quiet_caught_panics() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        if std::env::var_os("LOOPWORK_FUZZ_PANICS").is_none() {
            std::panic::set_hook(Box::new(|_| {}));
        }
    });
}
