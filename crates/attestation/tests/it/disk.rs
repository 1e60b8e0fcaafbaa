//! A full disk under SQLite (a 4 MiB tmpfs, filled): writes fail with a clear error, the
//! server keeps serving (PollHosts from memory, reads), nothing is wrongly `trusted`, and
//! once space is back writes succeed without a restart. Needs root (to mount the tmpfs);
//! `make test` runs as root.

use std::process::Command;
use std::time::Duration;

use serde_json::json;

use crate::fixtures::{ADMIN_TOKEN, host, server_config};

struct Mount(std::path::PathBuf);

impl Drop for Mount {
    fn drop(&mut self) {
        // Lazy: a server a failed assertion left running may still hold files open.
        let _ = Command::new("umount").arg("-l").arg(&self.0).status();
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| o.stdout.starts_with(b"0\n"))
}

#[tokio::test(flavor = "multi_thread")]
async fn a_full_disk_fails_writes_clearly_and_the_server_keeps_serving() {
    if !is_root() {
        eprintln!("not root: the full-disk test needs to mount a tmpfs (make test runs as root)");
        return;
    }
    let dir = std::env::temp_dir().join(format!("trustpool-fulldisk-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let status = Command::new("mount")
        .args(["-t", "tmpfs", "-o", "size=4m", "tmpfs"])
        .arg(&dir)
        .status()
        .unwrap();
    assert!(status.success(), "root, but mounting a tmpfs failed");
    let _mount = Mount(dir.clone());
    let server = trustpool_attestation::start(server_config(&dir))
        .await
        .unwrap();
    let service = &server.service;
    service
        .store
        .enroll_host(&host("a", "compute-1", &[]), Some("ek-of-a"), None, None)
        .await
        .unwrap();
    service.refresh_cache().await.unwrap();
    let client = reqwest::Client::builder()
        .add_root_certificate(
            reqwest::Certificate::from_pem(&std::fs::read(dir.join("pki/ca.crt")).unwrap())
                .unwrap(),
        )
        .build()
        .unwrap();
    let base = format!("https://127.0.0.1:{}", server.address.port());
    let add = |name: &str| {
        client
            .post(format!("{base}/v1/hosts"))
            .bearer_auth(ADMIN_TOKEN)
            .json(&json!({"host_name": name}))
            .send()
    };
    let poll = || {
        client
            .post(format!("{base}/AttestationService/resources/PollHosts"))
            .json(&json!({"hosts": ["compute-1"]}))
            .send()
    };
    assert_eq!(add("compute-2").await.unwrap().status(), 201);

    // Fill the disk.
    let filler = dir.join("filler");
    {
        use std::io::Write as _;
        let mut f = std::fs::File::create(&filler).unwrap();
        let block = vec![0u8; 64 * 1024];
        while f.write_all(&block).is_ok() {}
        let _ = f.sync_all();
    }
    // Writes fail with a clear status (the details in the server's log), not a panic or a
    // hang; reads and PollHosts keep answering; nothing reads trusted.
    let refused = tokio::time::timeout(Duration::from_secs(30), add("compute-3"))
        .await
        .unwrap()
        .unwrap();
    assert!(refused.status().is_server_error(), "{}", refused.status());
    let answer = poll().await.unwrap();
    assert_eq!(answer.status(), 200);
    let body: serde_json::Value = answer.json().await.unwrap();
    assert_ne!(body["hosts"][0]["trust_lvl"], "trusted", "{body}");
    // On-demand attestation cannot write its audit row: an error, never a trusted verdict.
    if let Ok(verdict) = service.attest_now("test", "compute-1").await {
        assert_ne!(verdict.level, trustpool_api::oat::TrustLevel::Trusted);
    }
    assert_eq!(
        client
            .get(format!("{base}/metrics"))
            .send()
            .await
            .unwrap()
            .status(),
        200
    );

    // Space comes back: writes succeed again, same process.
    std::fs::remove_file(&filler).unwrap();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        let status = add("compute-3").await.unwrap().status();
        if status == 201 {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "writes never recovered: {status}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert!(service.store.grant("compute-3").await.unwrap().is_some());
    server.stop().await;
}
