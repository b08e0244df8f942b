//! An inbox body as bytes: through `serde_json` into the activity parser (`head`, then `parse`),
//! as the inbox does before anything is checked or stored.
#![no_main]

use caremesh_federation::activity;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(value) = serde_json::from_slice::<serde_json::Value>(data) else {
        return;
    };
    if let Ok(head) = activity::head(&value) {
        let _ = activity::is_actor_update(&value, &head);
    }
    let _ = activity::parse(&value);
});
