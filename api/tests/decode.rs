//! Request bodies decoded with dockerd's rules: the words of each refusal, and what a
//! body that passes turns into.

use berth_api::container::{ContainerCreateRequest, UpdateConfig};
use berth_api::json::{decode, decode_body, decode_body_or_default, DecodeError};

fn create(body: &str) -> Result<ContainerCreateRequest, String> {
    ContainerCreateRequest::decode(Some("application/json"), body.as_bytes())
        .map_err(|e| e.to_string())
}

#[test]
fn wrong_types_are_named_as_go_names_them() {
    let cases = [
        (
            r#"{"Image":"x","Cmd":5}"#,
            "invalid JSON: json: cannot unmarshal number into Go struct field ContainerConfigWrapper.Cmd of type string",
        ),
        (
            r#"{"Image":"x","Cmd":["a",5]}"#,
            "invalid JSON: json: cannot unmarshal array into Go struct field ContainerConfigWrapper.Cmd of type string",
        ),
        (
            r#"{"Image":"x","HostConfig":{"NetworkMode":"none","Memory":"lots"}}"#,
            "invalid JSON: json: cannot unmarshal string into Go struct field HostConfig.HostConfig.Memory of type int64",
        ),
        (
            r#"{"Image":"x","Env":"A=1"}"#,
            "invalid JSON: json: cannot unmarshal string into Go struct field ContainerConfigWrapper.Env of type []string",
        ),
        (
            r#"{"Image":"x","Tty":"yes"}"#,
            "invalid JSON: json: cannot unmarshal string into Go struct field ContainerConfigWrapper.Tty of type bool",
        ),
        (
            r#"{"Image":"x","Healthcheck":{"Interval":"1s"}}"#,
            "invalid JSON: json: cannot unmarshal string into Go struct field HealthConfig.Healthcheck.Interval of type time.Duration",
        ),
        (
            r#"{"Image":"x","HostConfig":{"Mounts":[{"Type":"tmpfs","Target":5}]}}"#,
            "invalid JSON: json: cannot unmarshal number into Go struct field Mount.HostConfig.Mounts.Target of type string",
        ),
        (
            r#"{"Image":"x","StopTimeout":1.5}"#,
            "invalid JSON: json: cannot unmarshal number 1.5 into Go struct field ContainerConfigWrapper.StopTimeout of type int",
        ),
        (
            r#"{"Image":"x","HostConfig":{"RestartPolicy":{"Name":5}}}"#,
            "invalid JSON: json: cannot unmarshal number into Go struct field RestartPolicy.HostConfig.RestartPolicy.Name of type string",
        ),
        (
            r#"{"Image":"x","Labels":{"a":1}}"#,
            "invalid JSON: json: cannot unmarshal number into Go struct field ContainerConfigWrapper.Labels of type string",
        ),
        (
            r#"{"Image":"x","HostConfig":{"BlkioWeight":70000}}"#,
            "invalid JSON: json: cannot unmarshal number 70000 into Go struct field HostConfig.HostConfig.BlkioWeight of type uint16",
        ),
        (
            r#"{"Image":"x","HostConfig":{"Memory":9223372036854775808}}"#,
            "invalid JSON: json: cannot unmarshal number 9223372036854775808 into Go struct field HostConfig.HostConfig.Memory of type int64",
        ),
        (
            r#"{"Image":"x","HostConfig":{"PortBindings":{"80/tcp":"8080"}}}"#,
            "invalid JSON: json: cannot unmarshal string into Go struct field HostConfig.HostConfig.PortBindings of type []nat.PortBinding",
        ),
        (
            r#"{"Image":"x","HostConfig":{"LogConfig":[]}}"#,
            "invalid JSON: json: cannot unmarshal array into Go struct field HostConfig.HostConfig.LogConfig of type container.LogConfig",
        ),
        (
            r#"{"Image":"x","HostConfig":{"Mounts":[{"Target":"/x","TmpfsOptions":{"Mode":-1}}]}}"#,
            "invalid JSON: json: cannot unmarshal number -1 into Go struct field TmpfsOptions.HostConfig.Mounts.TmpfsOptions.Mode of type fs.FileMode",
        ),
        (
            r#"{"Image":"x","NetworkingConfig":{"EndpointsConfig":{"n":{"Aliases":"a"}}}}"#,
            "invalid JSON: json: cannot unmarshal string into Go struct field EndpointSettings.NetworkingConfig.EndpointsConfig.Aliases of type []string",
        ),
        (
            r#"{"Image":"x","ExposedPorts":{"80/tcp":1}}"#,
            "invalid JSON: json: cannot unmarshal number into Go struct field ContainerConfigWrapper.ExposedPorts of type struct {}",
        ),
        (
            "[1]",
            "invalid JSON: json: cannot unmarshal array into Go value of type runconfig.ContainerConfigWrapper",
        ),
    ];
    for (body, want) in cases {
        assert_eq!(create(body).unwrap_err(), want, "{body}");
    }
    let e = decode::<UpdateConfig>(br#"{"Memory":"lots"}"#).unwrap_err();
    assert_eq!(
        e.to_string(),
        "invalid JSON: json: cannot unmarshal string into Go struct field UpdateConfig.Memory of type int64"
    );
}

#[test]
fn empty_and_broken_bodies() {
    assert_eq!(
        create("").unwrap_err(),
        "invalid JSON: got EOF while reading request body"
    );
    for body in ["{}", "null", r#"{"HostConfig":{"NetworkMode":"none"}}"#] {
        assert_eq!(
            create(body).unwrap_err(),
            "Config cannot be empty in order to create a container",
            "{body}"
        );
    }
    assert_eq!(
        create(r#"{"Image": "#).unwrap_err(),
        "invalid JSON: unexpected EOF"
    );
    assert_eq!(
        create(r#"{"Image":"x"} {}"#).unwrap_err(),
        "unexpected content after JSON"
    );
    assert_eq!(
        ContainerCreateRequest::decode(Some("text/plain"), b"{}").unwrap_err(),
        DecodeError::UnsupportedContentType("text/plain".into())
    );
    // Update takes no body, or null, as nothing.
    assert_eq!(
        decode_body_or_default::<UpdateConfig>(None, b"").unwrap(),
        UpdateConfig::default()
    );
    assert_eq!(
        decode_body::<UpdateConfig>(Some("application/json"), b"null").unwrap(),
        Some(UpdateConfig::default())
    );
}

#[test]
fn a_good_body_decodes_as_go_would() {
    let r = create(
        r#"{
        "image": "busybox", "cmd": "echo hi", "Env": null, "Entrypoint": ["", null],
        "Unknown": {"deep": [1, 2]}, "Labels": {"a": null},
        "Volumes": {"/data": {"ignored": true}},
        "HostConfig": {
            "networkmode": "none", "Memory": 6291456, "MemorySwappiness": null,
            "CapAdd": "NET_ADMIN", "ConsoleSize": [24], "Binds": ["/a:/b:ro"],
            "PortBindings": {"80/tcp": null, "81/tcp": [{"HostPort": "8081"}]},
            "RestartPolicy": {"Name": "on-failure", "MaximumRetryCount": 3},
            "Mounts": [{"Type": "volume", "Target": "/v", "VolumeOptions": {"NoCopy": true,
                "DriverConfig": {"Name": "local", "Options": {"o": "1"}}}}],
            "Ulimits": [null, {"Name": "nofile", "Soft": 1, "Hard": 2}],
            "Init": true
        },
        "NetworkingConfig": {"EndpointsConfig": {"net": {"Aliases": ["web"]}}}
    }"#,
    )
    .unwrap();
    let c = &r.config;
    assert_eq!(c.image, "busybox");
    assert_eq!(c.cmd.as_deref(), Some(&["echo hi".to_string()][..]));
    assert_eq!(c.env, None);
    assert_eq!(c.entrypoint, Some(vec![String::new(), String::new()]));
    assert_eq!(c.labels.as_ref().unwrap()["a"], "");
    assert!(c.volumes.as_ref().unwrap().contains_key("/data"));
    let hc = r.host_config.as_ref().unwrap();
    assert_eq!(hc.network_mode.as_str(), "none");
    assert!(hc.network_mode.is_none());
    assert_eq!(hc.resources.memory, 6 << 20);
    assert_eq!(hc.resources.memory_swappiness, None);
    assert_eq!(hc.cap_add, Some(vec!["NET_ADMIN".to_string()]));
    assert_eq!(hc.console_size, [24, 0]);
    assert_eq!(hc.restart_policy.maximum_retry_count, 3);
    let ports = hc.port_bindings.as_ref().unwrap();
    assert_eq!(ports["80/tcp"], None);
    assert_eq!(ports["81/tcp"].as_ref().unwrap()[0].host_port, "8081");
    let vo = hc.mounts[0].volume_options.as_ref().unwrap();
    assert!(vo.no_copy);
    assert_eq!(vo.driver_config.as_ref().unwrap().options["o"], "1");
    let ul = hc.resources.ulimits.as_ref().unwrap();
    assert_eq!((ul[0].name.as_str(), ul[1].hard), ("", 2));
    assert_eq!(hc.init, Some(true));
    let eps = r.networking_config.unwrap().endpoints_config.unwrap();
    assert_eq!(eps["net"].aliases, Some(vec!["web".to_string()]));
}

#[test]
fn what_the_cli_sends_is_what_the_engine_reads() {
    // The CLI serializes the same types: a round trip through JSON changes nothing.
    let r = create(
        r#"{"Image":"x","Cmd":["a"],"Tty":true,"StopTimeout":3,
            "HostConfig":{"Memory":10000000,"Tmpfs":{"/t":"size=1m"},"Sysctls":{"net.a":"1"},
            "Mounts":[{"Type":"tmpfs","Target":"/m","TmpfsOptions":{"SizeBytes":1024}}],
            "LogConfig":{"Type":"json-file","Config":{"max-size":"1m"}}}}"#,
    )
    .unwrap();
    let bytes = serde_json::to_vec(&r).unwrap();
    let back = ContainerCreateRequest::decode(Some("application/json"), &bytes).unwrap();
    assert_eq!(back, r);
}
