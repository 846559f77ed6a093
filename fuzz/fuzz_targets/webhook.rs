//! A correctly signed delivery with an arbitrary body, as `POST /webhook` sees it: verifying
//! and parsing never panics, and an accepted event survives a round trip through JSON (the
//! processor re-reads what ingest stored).
#![no_main]

use libfuzzer_sys::fuzz_target;
use stripe_webhook::{sign, Event, Verifier};

const SECRET: &str = "whsec_fuzzing_secret";
const NOW: i64 = 1_700_000_000;

fuzz_target!(|body: &[u8]| {
    let verifier = Verifier::new([SECRET]).expect("a valid secret");
    let header = sign(body, SECRET, NOW);
    let Ok(event) = verifier.construct_event(body, Some(&header), NOW) else {
        return;
    };
    let _ = event.verification_session();
    let again = serde_json::to_vec(&event).expect("an event serializes");
    let back = Event::from_slice(&again).expect("a serialized event parses");
    assert_eq!(back.id, event.id);
    assert_eq!(back.type_, event.type_);
    assert_eq!(back.created, event.created);
});
