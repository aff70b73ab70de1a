//! The Go binary reader: ELF headers, buildinfo and `.gopclntab` of any bytes (`read`), and the
//! lookup of crypto/tls writeKeyLog by symbol table or pclntab (`find_function`).
#![no_main]

use libfuzzer_sys::fuzz_target;
use modtrace::gokeys::gobin::{find_function, find_in_pclntab, read};

const WRITE_KEY_LOG: &str = "crypto/tls.(*Config).writeKeyLog";

fuzz_target!(|data: &[u8]| {
    let _ = read(data);
    if let Ok(f) = find_function(data, WRITE_KEY_LOG) {
        assert!(f.file_offset < data.len() as u64, "offset outside the file");
    }
    let _ = find_in_pclntab(data, WRITE_KEY_LOG);
});
