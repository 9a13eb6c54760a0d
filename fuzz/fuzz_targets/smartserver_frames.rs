//! Placeholder: the platform's message mapping gets its target with the platform.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let _ = data;
});
