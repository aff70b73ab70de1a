//! The zip reader and `h1:` hashing (dirhash Hash1 over Go's archive/zip reading) with the
//! limits the analyzer uses, zip-bomb limits included: any bytes give a hash or an error, and
//! the uncompressed bytes hashed stay within `max_total_bytes`. Also `mod_h1` and the check
//! for entries outside `<module>@<version>/`.
#![no_main]

use libfuzzer_sys::fuzz_target;
use modtrace::gomod::h1::{hash_zip, mod_h1, unexpected_entry, H1Limits};
use std::io::Cursor;

fuzz_target!(|data: &[u8]| {
    let limits = H1Limits::default();
    if let Ok(z) = hash_zip(Cursor::new(data), &limits) {
        assert!(z.h1.starts_with("h1:"));
        assert!(
            z.bytes_hashed <= limits.max_total_bytes,
            "zip bomb limit not kept"
        );
        let budget =
            (data.len() as u64 * limits.max_expansion_ratio).max(limits.expansion_allowance);
        assert!(z.bytes_hashed <= budget, "expansion limit not kept");
        let _ = unexpected_entry(&z.entries, "example.com/m", "v1.0.0");
    }
    let _ = mod_h1(data);
});
