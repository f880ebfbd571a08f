//! What a Docker user's fingers and scripts expect of `berth` (issue 16), each checked
//! side by side with the real docker CLI against the same berthd: flag parsing and its
//! errors (words and exit codes), Go templates, `table`/`json`/`raw` formats with
//! docker's headers, the run/create flags reaching berthd as docker sends them, the
//! docker CLI's contexts, completion, help and version.

mod containers_support;

use containers_support::Berthd;
use std::process::Command;
use std::time::Duration;

const IMG: &str = "busybox:test";

/// docker's words with its name replaced by berth's, for comparing outputs.
fn as_berth(s: &str) -> String {
    // The test's config directory keeps its name.
    s.replace("docker-config", "\0")
        .replace("docker", "berth")
        .replace('\0', "docker-config")
}

/// Output with ages under two minutes made one word and spaces squeezed (the columns
/// move with the text): for comparing listings of an image made seconds ago.
fn ages_masked(s: &str) -> String {
    let mut t = s
        .replace("Less than a second", "AGE")
        .replace("About a minute", "AGE")
        .replace(" seconds", " second");
    // "N second" -> "AGE", wherever it stands (a table cell, a JSON string).
    while let Some(i) = t.find(" second") {
        let digits = t[..i]
            .chars()
            .rev()
            .take_while(|c| c.is_ascii_digit())
            .count();
        t.replace_range(i - digits..i + " second".len(), "AGE");
    }
    t.lines()
        .map(|l| l.split_whitespace().collect::<Vec<_>>().join(" "))
        .collect::<Vec<_>>()
        .join("\n")
}

/// `berth ARGS` and `docker ARGS`: (exit code, stdout, stderr) of each, docker's in
/// berth's words.
fn both(d: &Berthd, args: &[&str]) -> ((i32, String, String), (i32, String, String)) {
    let b = d.berth(args, None);
    let (code, out, err) = d.run(args, None);
    (b, (code, as_berth(&out), as_berth(&err)))
}

/// Asserts that berth and docker answer `args` alike.
fn same(d: &Berthd, args: &[&str]) -> (i32, String, String) {
    let (b, k) = both(d, args);
    assert_eq!(b, k, "berth vs docker for {args:?}");
    b
}

#[test]
fn flags_are_refused_in_docker_s_words_and_exit_codes() {
    let d = Berthd::start();
    for args in [
        &["run", "--network", "none", "--init2", IMG][..],
        &["exec", "--bogus", "c", "true"],
        &["run", "-Z", "x"],
        &["run", "-iZ", "x"],
        &["run", "--name"],
        &["run", "-e"],
        &["ps", "-n", "x"],
        &["ps", "--last", "99999999999999999999"],
        &["stop", "-t", "x", "a"],
        &["ps", "a"],
        &["rm"],
        &["rename", "a"],
        &["run"],
        &["run", "--rm", "--rm", "--name", "a", "--name", "b"],
        &["exec", "c"],
        &["foo"],
        &["image", "bogus"],
        &["version", "--bogus"],
        &["--bogus"],
        &["run", "--network", "none", "-m", "x", IMG],
        &["create", "--network", "none", "--cpus", "x", IMG],
        &["run", "--network", "none", "--rm=maybe", IMG],
        &["run", "--network", "none", "--stop-timeout", "x", IMG],
    ] {
        let (code, out, err) = same(&d, args);
        assert_ne!(code, 0, "{args:?}");
        assert!(out.is_empty(), "{args:?}: {out}");
        assert!(!err.is_empty(), "{args:?}");
    }
    // The codes themselves: a flag error is 125, a wrong number of arguments 1.
    assert_eq!(d.berth(&["run", "--init2", IMG], None).0, 125);
    assert_eq!(d.berth(&["rm"], None).0, 1);
    // Bare berth: its help on stdout, exit 0, as bare docker.
    let (code, out, err) = d.berth(&[], None);
    assert_eq!((code, err.as_str()), (0, ""));
    assert!(out.contains("Usage:") && out.contains("run"), "{out}");
    // -v as docker -v.
    let v = d.berth_ok(&["-v"]);
    assert!(v.starts_with("Berth version "), "{v}");
    assert!(d.ok(&["-v"]).starts_with("Docker version "));
}

#[test]
fn glued_short_values_and_repeated_flags_as_docker() {
    let d = Berthd::start();
    let vol = d.dir.path().join("glued");
    std::fs::create_dir_all(&vol).unwrap();
    std::fs::write(vol.join("f"), "from the host\n").unwrap();
    let v = format!("-v{}:/b", vol.display());
    let script = "echo $FOO $X $(id -u) $(pwd) $(cat /b/f); cat /sys/fs/cgroup/memory/memory.limit_in_bytes 2>/dev/null || cat /sys/fs/cgroup/memory.max";
    let args = [
        "run",
        "--rm",
        "--rm",
        "--network",
        "none",
        "-eFOO=bar",
        "-uroot",
        "-w/tmp",
        "-m64m",
        &v,
        "-e=X=1",
        IMG,
        "sh",
        "-c",
        script,
    ];
    let (code, out, err) = same(&d, &args);
    assert_eq!((code, err.as_str()), (0, ""));
    assert_eq!(out, "bar 1 0 /tmp from the host\n67108864\n");
    // The last of a repeated single-valued flag wins, in both CLIs.
    for (cli, name) in [("berth", "cli-last-b"), ("docker", "cli-last-d")] {
        let args = [
            "create",
            "--network",
            "none",
            "--name",
            "first",
            "--name",
            name,
            IMG,
            "true",
        ];
        if cli == "berth" {
            d.berth_ok(&args);
        } else {
            d.ok(&args);
        }
        assert_eq!(d.inspect(name, "{{.Name}}"), format!("/{name}"));
        d.berth_ok(&["rm", name]);
    }
    // exec's glued user.
    d.berth_ok(&[
        "run",
        "-d",
        "--network",
        "none",
        "--name",
        "ex",
        IMG,
        "sleep",
        "60",
    ]);
    assert_eq!(
        same(&d, &["exec", "-u1000", "ex", "id", "-u"]),
        (0, "1000\n".into(), String::new())
    );
    assert_eq!(
        same(&d, &["exec", "-u=1000:1000", "ex", "id", "-g"]).1,
        "1000\n"
    );
    // Options after the image belong to the command.
    assert_eq!(
        same(
            &d,
            &[
                "run",
                "--rm",
                "--network",
                "none",
                IMG,
                "echo",
                "x",
                "-e",
                "--rm"
            ]
        )
        .1,
        "x -e --rm\n"
    );
}

#[test]
fn go_templates_and_tables_as_docker_prints_them() {
    let d = Berthd::start();
    d.berth_ok(&["volume", "create", "v1"]);
    d.berth_ok(&[
        "volume",
        "create",
        "--label",
        "k=v",
        "--label",
        "com.example.some-label=x",
        "v2",
    ]);
    d.berth_ok(&[
        "run",
        "-d",
        "--network",
        "none",
        "--name",
        "web",
        "-l",
        "a=1",
        "-l",
        "com.x=y",
        "-v",
        "v1:/data",
        IMG,
        "sleep",
        "300",
    ]);
    d.berth_ok(&["run", "--network", "none", "--name", "done", IMG, "true"]);
    let wide = r#"{{.Label "a"}} {{upper .Names}} {{pad .Names 2 3}}| {{truncate .Names 2}} {{title "hello world"}} {{split "a:b" ":"}} {{join (split "a:b" ":") "-"}} {{json .Labels}} {{printf "%5.2f|%-4s|%q|%v|%x" 3.14159 "ab" "q" 12 255}} {{len .Names}} {{index (split "a:b" ":") 1}} {{if eq .State "running"}}R{{else}}N{{end}} {{range $i, $e := split "x,y" ","}}{{$i}}={{$e}};{{end}} {{with .Names}}w={{.}}{{end}} {{- "  trimmed"}} {{println "ln"}}|{{slice "abcdef" 1 3}} {{html "<a>"}} {{js "a<b"}} {{urlquery "a b&"}} {{and 1 0}} {{or 0 "x"}} {{not true}} {{lt 1 2}} {{print 1 2 "a" "b" 3}}"#;
    for f in [
        wide,
        "{{.Names}}",
        "{{.ID}}\t{{.Image}}",
        "table {{.ID}}\\t{{.Names}}\\t{{.Label \"a\"}}\\t{{.Mounts}}\\t{{.Command}}",
        "table {{.Names}}\\t{{.Label \"com.x\"}}\\t{{upper .Image}}\\t{{.State}}",
        "{{.Names}}: {{.Size}} {{.LocalVolumes}} {{.Networks}} {{.State}}",
        "{{.Nope}}",
        "table {{.Nope}}",
        "{{.ID",
        "{{nosuchfunc .ID}}",
        "{{range .Names}}x{{end}}",
    ] {
        same(&d, &["ps", "-a", "--format", f]);
    }
    // .Labels joins k=v pairs with commas; docker's order is Go's map order (random),
    // so only the pairs are compared.
    let pairs = |out: String| {
        let mut v: Vec<String> = out.trim().split(',').map(String::from).collect();
        v.sort();
        v
    };
    let f = ["ps", "--filter", "name=web", "--format", "{{.Labels}}"];
    assert_eq!(pairs(d.berth_ok(&f)), ["a=1", "com.x=y"]);
    assert_eq!(pairs(d.berth_ok(&f)), pairs(d.ok(&f)));
    let f = [
        "volume",
        "ls",
        "--filter",
        "name=v2",
        "--format",
        "{{.Labels}}",
    ];
    assert_eq!(pairs(d.berth_ok(&f)), ["com.example.some-label=x", "k=v"]);
    assert_eq!(pairs(d.berth_ok(&f)), pairs(d.ok(&f)));
    // RunningFor says "ago", as docker's.
    for line in d
        .berth_ok(&["ps", "-a", "--format", "{{.RunningFor}}"])
        .lines()
    {
        assert!(line.ends_with(" ago"), "{line}");
    }
    // -s and .Size: sizes asked for, shown as docker shows them.
    same(&d, &["ps", "-a", "-s", "--format", "{{.Names}} {{.Size}}"]);
    let out = d.berth_ok(&["ps", "-a", "-s"]);
    assert!(out.lines().next().unwrap_or("").ends_with("SIZE"), "{out}");

    for f in [
        "table {{.Repository}}\\t{{.Tag}}\\t{{.ID}}\\t{{.CreatedAt}}\\t{{.Size}}\\t{{.VirtualSize}}\\t{{.Digest}}\\t{{.Containers}}\\t{{.SharedSize}}\\t{{.UniqueSize}}",
        "raw",
        "{{json .Repository}} {{.Nope}}",
        "{{.ID}}",
    ] {
        same(&d, &["images", "--format", f]);
    }
    for f in [
        "table {{.Name}}\\t{{.Driver}}\\t{{.Scope}}\\t{{.Mountpoint}}\\t{{.Label \"k\"}}\\t{{.Label \"com.example.some-label\"}}\\t{{.Links}}\\t{{.Size}}",
        "raw",
        "{{.Name}}",
        "{{.Nope}}",
    ] {
        same(&d, &["volume", "ls", "--format", f]);
    }
    // json of a volume without labels (docker joins labels in Go's random map order).
    same(
        &d,
        &["volume", "ls", "--filter", "name=v1", "--format", "json"],
    );
    for f in [
        "table {{.Type}}\\t{{.TotalCount}}\\t{{.Active}}\\t{{.Size}}\\t{{.Reclaimable}}",
        "json",
        "{{.Type}}: {{.Reclaimable}}",
        "{{.Nope}}",
    ] {
        same(&d, &["system", "df", "--format", f]);
    }
    for f in [
        "{{.State.Status}} {{json .Config.Labels}} {{.Config.Labels}} {{index .Config.Labels \"a\"}}",
        "{{.State.Running}} {{.HostConfig.NetworkMode}} {{range .Mounts}}{{.Name}}:{{.Destination}}{{end}}",
        "{{.Nope}}",
        "{{.State.Nope}}",
        "{{.ID",
        "{{json .Config.Cmd}} {{.Config.Cmd}} {{len .Config.Cmd}}",
    ] {
        same(&d, &["inspect", "-f", f, "web"]);
        same(&d, &["container", "inspect", "--format", f, "web", "done"]);
    }
    same(&d, &["inspect", "-f", "{{.Name}}", "web", "nosuch"]);
    for f in ["{{.Name}} {{.Driver}} {{.Labels}}", "{{.Nope}}", "json"] {
        same(&d, &["volume", "inspect", "-f", f, "v1", "v2"]);
    }
    same(&d, &["image", "inspect", "-f", "{{.Nope}}", IMG]);
    same(
        &d,
        &[
            "version",
            "-f",
            "{{.Server.Arch}} {{.Server.Os}} {{.Client.Os}}/{{.Client.Arch}} {{.Nope}}",
        ],
    );
    same(
        &d,
        &[
            "version",
            "-f",
            "{{.Server.Version}} {{.Server.ApiVersion}} {{.Client.Os}}/{{.Client.Arch}}",
        ],
    );
    // docker's type is system.dockerInfo in both (not put into berth's words).
    let args = ["info", "-f", "{{.Containers}} {{.Images}} {{.Nope}}"];
    assert_eq!(d.berth(&args, None), d.run(&args, None));
    same(
        &d,
        &[
            "info",
            "-f",
            "{{.ContainersRunning}} {{.NCPU}} {{json .Plugins.Volume}}",
        ],
    );
}

#[test]
fn run_and_create_flags_reach_berthd_as_docker_sends_them() {
    let d = Berthd::start();
    d.berth_ok(&[
        "create",
        "--network",
        "none",
        "-v",
        "/shared",
        "--name",
        "src",
        IMG,
        "true",
    ]);
    let flags = [
        "--network",
        "none",
        "--init",
        "--device",
        "/dev/null:/dev/n0:r",
        "--volumes-from",
        "src:ro",
        "--pid",
        "host",
        "--ipc",
        "private",
        "--uts",
        "host",
        "--cpu-period",
        "100000",
        "--cpu-quota",
        "50000",
        "--cpuset-mems",
        "0",
        "--oom-kill-disable",
        "--oom-score-adj",
        "-500",
        "--memory-swappiness",
        "10",
        "--group-add",
        "1234",
        "--mount",
        "type=volume,target=/vo,volume-opt=type=tmpfs,volume-opt=device=tmpfs,volume-label=a=b",
    ];
    let mut b = vec!["create", "--name", "by-berth"];
    b.extend(flags);
    b.extend([IMG, "true"]);
    d.berth_ok(&b);
    let mut k = vec!["create", "--name", "by-docker"];
    k.extend(flags);
    k.extend([IMG, "true"]);
    d.ok(&k);
    for field in [
        "Init",
        "Devices",
        "VolumesFrom",
        "PidMode",
        "IpcMode",
        "UTSMode",
        "CpuPeriod",
        "CpuQuota",
        "CpusetMems",
        "OomKillDisable",
        "OomScoreAdj",
        "MemorySwappiness",
        "GroupAdd",
        "Mounts",
        "RestartPolicy",
        "NetworkMode",
    ] {
        let f = format!("{{{{json .HostConfig.{field}}}}}");
        assert_eq!(
            d.inspect("by-berth", &f),
            d.inspect("by-docker", &f),
            "{field}"
        );
    }
    // Refused by the CLI as docker's CLI refuses them (PID, UTS modes, a device's
    // path): same words and code, nothing made.
    for args in [
        &["create", "--network", "none", "--pid", "bogus", IMG, "true"][..],
        &[
            "create",
            "--network",
            "none",
            "--uts",
            "container:x",
            IMG,
            "true",
        ],
        &[
            "create",
            "--network",
            "none",
            "--device",
            "/dev/null:rel",
            IMG,
            "true",
        ],
    ] {
        let (b, k) = both(&d, args);
        assert_eq!(b, k, "{args:?}");
        assert_ne!(b.0, 0, "{args:?}");
    }
    assert_eq!(d.berth_ok(&["ps", "-aq"]).lines().count(), 3);
    // The IPC mode and the OOM score's range are the daemon's to check, as docker's
    // CLI leaves them to dockerd: both CLIs send them and berthd answers both alike
    // (its refusal is in berth-api's create checks).
    for args in [
        &["create", "--network", "none", "--ipc", "bogus", IMG, "true"][..],
        &[
            "create",
            "--network",
            "none",
            "--oom-score-adj",
            "2000",
            IMG,
            "true",
        ],
    ] {
        let (b, k) = both(&d, args);
        assert_eq!((b.0, &b.2), (k.0, &k.2), "{args:?}");
        for id in [b.1.trim(), k.1.trim()]
            .into_iter()
            .filter(|i| !i.is_empty())
        {
            d.berth_ok(&["rm", id]);
        }
    }
}

#[test]
fn contexts_are_the_docker_cli_s() {
    let d = Berthd::start();
    let sock = format!("unix://{}", d.socket.display());
    let cfg = d.dir.path().join("docker-config");
    // Both CLIs with no DOCKER_HOST: the context decides.
    let berth = |args: &[&str]| {
        let mut c = d.berth_cmd(args);
        c.env_remove("BERTH_HOST");
        let o = containers_support::run_with_timeout(c, None, Duration::from_secs(30));
        (
            o.status.code().unwrap_or(-1),
            String::from_utf8_lossy(&o.stdout).into_owned(),
            String::from_utf8_lossy(&o.stderr).into_owned(),
        )
    };
    let docker = |args: &[&str]| {
        let mut c = d.cmd(args);
        c.env_remove("DOCKER_HOST");
        let o = containers_support::run_with_timeout(c, None, Duration::from_secs(30));
        (
            o.status.code().unwrap_or(-1),
            String::from_utf8_lossy(&o.stdout).into_owned(),
            as_berth(&String::from_utf8_lossy(&o.stderr)),
        )
    };
    // berth creates, docker sees and uses it.
    let host = format!("host={sock}");
    assert_eq!(
        berth(&[
            "context",
            "create",
            "bt",
            "--docker",
            &host,
            "--description",
            "the test's"
        ]),
        (
            0,
            "bt\n".into(),
            "Successfully created context \"bt\"\n".into()
        )
    );
    assert_eq!(docker(&["context", "use", "bt"]).0, 0);
    assert_eq!(berth(&["context", "show"]).1, "bt\n");
    assert_eq!(docker(&["context", "show"]).1, "bt\n");
    let (code, out, _) = berth(&["ps", "--format", "{{.ID}}"]);
    assert_eq!((code, out.as_str()), (0, ""));
    assert_eq!(docker(&["ps", "--format", "{{.ID}}"]).0, 0);
    // docker creates, berth sees it; the listings agree (the default's endpoint aside).
    assert_eq!(docker(&["context", "create", "dk", "--docker", &host]).0, 0);
    let list = |out: String| {
        out.lines()
            .filter(|l| !l.starts_with("default"))
            .map(String::from)
            .collect::<Vec<_>>()
    };
    assert_eq!(
        list(berth(&["context", "ls"]).1),
        list(docker(&["context", "ls"]).1)
    );
    let f = "{{.Name}} {{.Current}} {{.DockerEndpoint}}";
    assert_eq!(
        list(berth(&["context", "ls", "--format", f]).1),
        list(docker(&["context", "ls", "--format", f]).1)
    );
    // use/rm as docker: words and codes.
    assert_eq!(
        berth(&["context", "use", "dk"]),
        docker(&["context", "use", "dk"])
    );
    assert_eq!(
        berth(&["context", "use", "nope"]),
        docker(&["context", "use", "nope"])
    );
    assert_eq!(
        berth(&["context", "create", "dk"]),
        docker(&["context", "create", "dk"])
    );
    assert_eq!(
        berth(&["context", "create", "default"]),
        docker(&["context", "create", "default"])
    );
    assert_eq!(
        berth(&["context", "create", "b@d"]),
        docker(&["context", "create", "b@d"])
    );
    assert_eq!(
        berth(&["context", "rm", "dk"]).0,
        docker(&["context", "rm", "dk"]).0
    );
    assert_eq!(berth(&["context", "use", "default"]).0, 0);
    let text = std::fs::read_to_string(cfg.join("config.json")).unwrap();
    assert!(!text.contains("currentContext"), "{text}");
    // --context and DOCKER_CONTEXT choose one for a command.
    let (code, _, _) = berth(&["--context", "bt", "ps"]);
    assert_eq!(code, 0);
    let mut c = d.berth_cmd(&["ps", "-q"]);
    c.env_remove("BERTH_HOST").env("DOCKER_CONTEXT", "bt");
    let o = containers_support::run_with_timeout(c, None, Duration::from_secs(30));
    assert!(o.status.success());
    assert_eq!(
        berth(&["context", "rm", "bt"]),
        (0, "bt\n".into(), String::new())
    );

    // TLS files in a context: kept in docker's store, where docker finds them.
    let pem = d.dir.path().join("pem");
    std::fs::create_dir_all(&pem).unwrap();
    for f in ["ca", "cert", "key"] {
        std::fs::write(pem.join(format!("{f}.pem")), format!("not a real {f}\n")).unwrap();
    }
    let tls = format!(
        "host=tcp://127.0.0.1:1,ca={0}/ca.pem,cert={0}/cert.pem,key={0}/key.pem",
        pem.display()
    );
    assert_eq!(berth(&["context", "create", "tl", "--docker", &tls]).0, 0);
    let f = "{{json .TLSMaterial}} {{json .Endpoints}}";
    let (code, out, _) = berth(&["context", "inspect", "-f", f, "tl"]);
    assert_eq!(
        (code, out.clone()),
        (0, docker(&["context", "inspect", "-f", f, "tl"]).1)
    );
    assert!(
        out.contains(r#"{"docker":["ca.pem","cert.pem","key.pem"]}"#),
        "{out}"
    );
    // Using it reads them: a CA that is no certificate is refused before anything is
    // sent.
    let (code, _, err) = berth(&["--context", "tl", "ps"]);
    assert_eq!(code, 1, "{err}");
    assert!(!err.is_empty());
    assert_eq!(berth(&["context", "rm", "tl"]).0, 0);
    assert!(!cfg.join("contexts/tls").read_dir().unwrap().any(|_| true));
    // A file that is not there: refused, and no context is left half-made.
    let bad = "host=tcp://127.0.0.1:1,ca=/nonexistent/ca.pem";
    let (code, _, err) = berth(&["context", "create", "tb", "--docker", bad]);
    assert_eq!(code, 1);
    assert!(
        err.contains("open /nonexistent/ca.pem: no such file or directory"),
        "{err}"
    );
    assert_eq!(berth(&["context", "inspect", "tb"]).0, 1);
}

#[test]
fn history_as_docker_shows_it() {
    let d = Berthd::start();
    for args in [
        &["history", IMG][..],
        &["history", "--no-trunc", IMG],
        &["history", "-H=false", IMG],
        &[
            "history",
            "--human=false",
            "--format",
            "{{.CreatedAt}}|{{.Size}}",
            IMG,
        ],
        &["history", "-q", IMG],
        &[
            "history",
            "--format",
            "table {{.ID}}\\t{{.CreatedBy}}\\t{{.Comment}}",
            IMG,
        ],
        &["history", "--format", "json", IMG],
        &["history", "--format", "{{.Nope}}", IMG],
        &[
            "image",
            "history",
            "--format",
            "{{.ID}} {{.Size}} {{.CreatedSince}}",
            IMG,
        ],
        &["history", "nosuch:image"],
        &["history"],
        &["history", "a", "b"],
    ] {
        // The test image was made seconds ago: its ages may tick between the two runs.
        let (b, k) = both(&d, args);
        assert_eq!(
            (b.0, ages_masked(&b.1), b.2),
            (k.0, ages_masked(&k.1), k.2),
            "{args:?}"
        );
    }
    let (code, out, _) = d.berth(&["history", IMG], None);
    assert_eq!(code, 0);
    assert!(out.starts_with("IMAGE "), "{out}");
    assert!(out.lines().count() >= 2, "{out}");
}

#[test]
fn completion_help_and_version_as_docker_has_them() {
    let d = Berthd::start();
    // Completion scripts that the shells load.
    let bash = d.berth_ok(&["completion", "bash"]);
    assert!(bash.contains("berth"), "{bash}");
    let script = d.dir.path().join("berth.bash");
    std::fs::write(&script, &bash).unwrap();
    let out = Command::new("bash")
        .arg("-c")
        .arg(format!("source {} && complete -p berth", script.display()))
        .output()
        .expect("bash");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("berth"));
    assert!(d
        .berth_ok(&["completion", "zsh"])
        .contains("#compdef berth"));
    assert!(d
        .berth_ok(&["completion", "fish"])
        .contains("complete -c berth"));
    // help CMD is CMD --help; an unknown topic is refused as docker refuses it.
    assert_eq!(d.berth_ok(&["help", "rm"]), d.berth_ok(&["rm", "--help"]));
    assert_eq!(
        d.berth_ok(&["help", "container", "ls"]),
        d.berth_ok(&["container", "ls", "--help"])
    );
    let (b, k) = both(&d, &["help", "foo"]);
    assert_eq!((b.0, b.2.lines().next()), (k.0, k.2.lines().next()));
    // version: linux/amd64 as docker says it.
    let os_arch = |out: &str| {
        out.lines()
            .find(|l| l.trim_start().starts_with("OS/Arch:"))
            .map(|l| l.split_whitespace().last().unwrap_or("").to_string())
    };
    assert_eq!(
        os_arch(&d.berth_ok(&["version"])),
        os_arch(&d.ok(&["version"]))
    );
    same(
        &d,
        &[
            "version",
            "--format",
            "{{.Client.Os}}/{{.Client.Arch}} {{.Server.Os}}/{{.Server.Arch}}",
        ],
    );
}

#[test]
fn berthd_honours_or_refuses_init_device_stop_signal_and_tiny_memory() {
    let d = Berthd::start();
    // --init: docker-init (tini) is PID 1 and runs the command after `--`, from
    // either CLI; the container's exit code comes through it.
    let script = "tr '\\0' ' ' < /proc/1/cmdline; echo; exit 3";
    let args = [
        "run",
        "--rm",
        "--init",
        "--network",
        "none",
        IMG,
        "sh",
        "-c",
        script,
    ];
    // (The path names docker: compared as they are.)
    let (code, out, err) = d.berth(&args, None);
    assert_eq!((code, out.clone(), err.clone()), d.run(&args, None));
    assert_eq!((code, err.as_str()), (3, ""), "{out}");
    assert_eq!(out, format!("/sbin/docker-init -- sh -c {script} \n"));
    // --device: the node with the host's numbers, readable (its `r` rule adds nothing
    // to the default rules for /dev/null, in dockerd as here).
    let script = "stat -c '%t,%T' /dev/n0; head -c1 /dev/n0 | wc -c";
    let args = [
        "run",
        "--rm",
        "--network",
        "none",
        "--device",
        "/dev/null:/dev/n0:r",
        IMG,
        "sh",
        "-c",
        script,
    ];
    let (code, out, _) = same(&d, &args);
    assert_eq!(code, 0);
    assert_eq!(out.lines().collect::<Vec<_>>(), ["1,3", "0"], "{out}");
    // Refused in dockerd's words, by either CLI, and nothing left running.
    for args in [
        &[
            "run",
            "--rm",
            "--network",
            "none",
            "--device",
            "/dev/nosuchdevice",
            IMG,
            "true",
        ][..],
        &[
            "run",
            "--rm",
            "--network",
            "none",
            "--device",
            "/etc/hostname:/dev/x",
            IMG,
            "true",
        ],
        &[
            "create",
            "--network",
            "none",
            "--stop-signal",
            "BOGUS",
            IMG,
            "true",
        ],
        &["run", "--rm", "--network", "none", "-m", "100", IMG, "true"],
    ] {
        let (code, _, err) = same(&d, args);
        assert_ne!(code, 0, "{args:?}");
        assert!(
            err.contains("Error response from daemon"),
            "{args:?}: {err}"
        );
    }
    let (_, _, err) = d.berth(
        &[
            "create",
            "--network",
            "none",
            "--stop-signal",
            "BOGUS",
            IMG,
            "true",
        ],
        None,
    );
    assert!(err.contains("Invalid signal: BOGUS"), "{err}");
    let (_, _, err) = d.berth(
        &["run", "--rm", "--network", "none", "-m", "100", IMG, "true"],
        None,
    );
    assert!(err.contains("Minimum memory limit allowed is 6MB"), "{err}");
    let (_, _, err) = d.berth(
        &[
            "run",
            "--rm",
            "--network",
            "none",
            "--device",
            "/dev/nosuchdevice",
            IMG,
            "true",
        ],
        None,
    );
    assert!(
        err.contains("error gathering device information while adding custom device \"/dev/nosuchdevice\": no such file or directory"),
        "{err}"
    );
    assert_eq!(d.berth_ok(&["ps", "-q"]), "");
}
