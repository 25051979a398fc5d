//! The SEMOPS configuration text: a service's TOML configuration and the
//! network's directory. Any text parses to a value or an error; a value
//! that parsed and checked writes back to TOML that parses to the same value.
#![no_main]
use libfuzzer_sys::fuzz_target;
use mpay_identity::Timestamp;
use mpay_network::{Directory, ServiceConfig};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(config) = ServiceConfig::from_toml(text) {
        let _ = config.check();
        let again = toml::to_string(&config).expect("a parsed configuration writes back");
        let reread = ServiceConfig::from_toml(&again).expect("and reads again");
        assert_eq!(reread, config);
        let _ = format!("{config:?}");
    }
    if let Ok(directory) = toml::from_str::<Directory>(text) {
        let _ = directory.resolve(Timestamp(1_800_000_000_000));
        let again = toml::to_string(&directory).expect("a parsed directory writes back");
        let reread: Directory = toml::from_str(&again).expect("and reads again");
        assert_eq!(reread, directory);
    }
});
