//! The typed Engine API model's decoders and checks (berth-api): every request body
//! decoded as dockerd decodes it, and what decodes is validated as berthd validates it.
#![no_main]

use berth_api::container::{ContainerCreateRequest, UpdateConfig};
use berth_api::exec::{ExecConfig, ExecStartCheck};
use berth_api::json::{decode, decode_body_or_default};
use berth_api::validate::{self, HostFacts};
use berth_api::volume::VolumeCreateOptions;

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let facts = HostFacts::capable(2);
    if let Ok(mut c) = ContainerCreateRequest::decode(Some("application/json"), data) {
        let mut hc = c.host_config.take().unwrap_or_default();
        let _ = validate::create(&c.config, &mut hc, c.networking_config.as_ref(), &facts);
        let _ = berth_api::mount::collect(&hc);
        validate::adapt(&mut hc, &facts, &validate::Defaults::default());
        let _ = validate::swap_limit(&hc.resources);
    }
    if let Ok(mut u) = decode::<UpdateConfig>(data) {
        let _ = validate::update(&mut u, &facts);
    }
    if let Ok(e) = decode::<ExecConfig>(data) {
        let _ = validate::exec(&e);
    }
    let _ = decode_body_or_default::<ExecStartCheck>(Some("application/json"), data);
    let _ = decode::<VolumeCreateOptions>(data);
});
