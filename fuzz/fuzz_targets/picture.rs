//! A picture as an upload brings it (`loopwork_pictures`): its metadata stripped, then a
//! thumbnail made of what is kept, for each type the server keeps (JPEG, PNG, WebP; the first
//! byte picks one). Nothing may panic, hang or allocate past the limits; what is stripped once
//! is stripped again to the same bytes (which EXIF fields stay is the unit tests' to check).
#![no_main]

use libfuzzer_sys::fuzz_target;

const TYPES: [&str; 3] = ["image/jpeg", "image/png", "image/webp"];

fuzz_target!(|data: &[u8]| {
    let Some((&pick, bytes)) = data.split_first() else { return };
    let mime = TYPES[usize::from(pick) % TYPES.len()];
    let Ok(stripped) = loopwork_pictures::strip(bytes::Bytes::copy_from_slice(bytes), mime) else { return };
    let again = loopwork_pictures::strip(stripped.clone(), mime).expect("what was stripped reads again");
    assert_eq!(again, stripped, "stripping twice changes nothing");
    let _ = loopwork_pictures::thumbnail(&stripped, mime);
});
