//! `WatchEvents`: resuming without gap or duplicate, live commits, the
//! slow client, and shutdown.

use super::*;

/// Every event REST lists, once the sequencer has numbered them all.
async fn numbered_events(app: &TestApp) -> usize {
    eventually(Duration::from_secs(20), "every event numbered", || async {
        let page = app.get("/v1/events?after_position=0&limit=100").await.body;
        let numbered = page["data"].as_array().unwrap().len();
        let all = app.get("/v1/events?limit=100").await.body["data"]
            .as_array()
            .unwrap()
            .len();
        (numbered == all).then_some(all)
    })
    .await
}

async fn next_event(stream: &mut tonic::Streaming<pb::Event>) -> pb::Event {
    tokio::time::timeout(Duration::from_secs(20), stream.message())
        .await
        .expect("an event within 20 s")
        .expect("no error")
        .expect("the stream goes on")
}

/// Read part of the stream, go away, come back from the last position
/// read: every event once, in commit order; and a commit made while
/// watching arrives without the client asking again.
async fn watch_events_resumes_with_no_gap_and_no_duplicate_case(app: &TestApp) {
    let key = app.admin_key.clone();
    let mut events = EventServiceClient::new(channel(app).await);
    let bank = app.account("bank", "usd", true).await;
    let shop = app.account("shop", "usd", false).await;
    for amount in 1..=3 {
        app.pay(&bank, &shop, amount).await;
    }
    numbered_events(app).await;
    let mut positions = Vec::new();
    let mut stream = events
        .watch_events(authed(&key, pb::WatchEventsRequest { after_position: 0 }))
        .await
        .unwrap()
        .into_inner();
    for _ in 0..3 {
        positions.push(next_event(&mut stream).await.position.unwrap());
    }
    drop(stream);
    for amount in 4..=6 {
        app.pay(&bank, &shop, amount).await;
    }
    let total = numbered_events(app).await;
    let resume = *positions.last().unwrap();
    let mut stream = events
        .watch_events(authed(&key, pb::WatchEventsRequest { after_position: resume }))
        .await
        .unwrap()
        .into_inner();
    while positions.len() < total {
        positions.push(next_event(&mut stream).await.position.unwrap());
    }
    let expected: Vec<i64> = (1..=total as i64).collect();
    assert_eq!(positions, expected, "every position once, in order");

    // Live: a payment made now reaches the open stream.
    let live = app.pay(&bank, &shop, 7).await;
    let event = next_event(&mut stream).await;
    assert_eq!(event.position, Some(total as i64 + 1));
    let data = event.data.unwrap();
    let Some(prost_types::value::Kind::StructValue(object)) = &data.fields["object"].kind else {
        panic!("{data:?}");
    };
    assert!(matches!(&object.fields["id"].kind, Some(prost_types::value::Kind::StringValue(id)) if *id == live));

    let refused = events
        .watch_events(authed(&key, pb::WatchEventsRequest { after_position: -1 }))
        .await
        .unwrap_err();
    assert_eq!(refused.code(), Code::InvalidArgument);
    let viewer_without_events = events
        .watch_events(Request::new(pb::WatchEventsRequest { after_position: 0 }))
        .await
        .unwrap_err();
    assert_eq!(viewer_without_events.code(), Code::Unauthenticated);
}
both!(
    watch_events_resumes_with_no_gap_and_no_duplicate,
    watch_events_resumes_with_no_gap_and_no_duplicate_case
);

async fn slow_watchers(backend: Backend, case: impl AsyncFnOnce(&TestApp)) {
    let mut config = Config::default();
    config.grpc_watch.buffer = 2;
    config.grpc_watch.slow_client_grace = Duration::from_millis(300);
    run_config(backend, config, case).await
}

/// A client that stops reading is cut once its buffer stayed full past the
/// grace, with a status naming where to resume; resuming there misses
/// nothing.
async fn a_client_that_reads_too_slowly_is_cut_case(app: &TestApp) {
    let bank = app.account("bank", "usd", true).await;
    let shop = app.account("shop", "usd", false).await;
    for amount in 1..=40 {
        app.pay(&bank, &shop, amount).await;
    }
    numbered_events(app).await;
    // A small window: the server can put little on the wire for a client
    // that does not read.
    let ch = Endpoint::from_shared(format!("http://{}", app.addr))
        .unwrap()
        .initial_stream_window_size(Some(1024))
        .connect()
        .await
        .unwrap();
    let mut events = EventServiceClient::new(ch);
    let mut stream = events
        .watch_events(authed(&app.admin_key, pb::WatchEventsRequest { after_position: 0 }))
        .await
        .unwrap()
        .into_inner();
    let mut last = next_event(&mut stream).await.position.unwrap();
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let cut = loop {
        match tokio::time::timeout(Duration::from_secs(20), stream.message())
            .await
            .unwrap()
        {
            Ok(Some(event)) => {
                let position = event.position.unwrap();
                assert_eq!(position, last + 1, "no gap before the cut");
                last = position;
            }
            Ok(None) => panic!("the stream ended without saying why"),
            Err(status) => break status,
        }
    };
    assert_eq!(cut.code(), Code::ResourceExhausted, "{cut:?}");
    assert_eq!(reason(&cut), "slow_consumer");
    assert!(
        cut.message().contains(&format!("after_position = {last}")),
        "{} names {last}",
        cut.message()
    );
    let mut resumed = events
        .watch_events(authed(&app.admin_key, pb::WatchEventsRequest { after_position: last }))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(next_event(&mut resumed).await.position, Some(last + 1));
}

both!(
    a_client_that_reads_too_slowly_is_cut,
    a_client_that_reads_too_slowly_is_cut_case,
    super::slow_watchers
);

/// SIGTERM with a watcher connected: the stream ends at once with
/// `UNAVAILABLE` and the position to resume from, and the process exits
/// well before its 30 s shutdown timeout instead of waiting for a client
/// that would never leave.
#[tokio::test]
async fn shutdown_ends_open_streams() {
    use std::process::{Command, Stdio};
    let dir = crate::support::temp_dir("settle_grpc_shutdown");
    let secret = crate::cli::admin_secret(&dir);
    let port = crate::support::free_port();
    let child = crate::cli::settle(&dir, None)
        .args(["serve", "--listen", &format!("127.0.0.1:{port}")])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut server = crate::support::Server(child);
    let base = format!("http://127.0.0.1:{port}");
    crate::support::wait_ready(&base).await;
    let channel = Endpoint::from_shared(base).unwrap().connect().await.unwrap();
    let mut accounts = AccountServiceClient::new(channel.clone());
    let open = pb::CreateAccountRequest {
        name: "a".into(),
        currency: "usd".into(),
        ..Default::default()
    };
    accounts.create_account(authed(&secret, open)).await.unwrap();
    let mut stream = EventServiceClient::new(channel)
        .watch_events(authed(&secret, pb::WatchEventsRequest { after_position: 0 }))
        .await
        .unwrap()
        .into_inner();
    let first = next_event(&mut stream).await.position.unwrap();
    let pid = server.0.id().to_string();
    assert!(Command::new("kill").args(["-TERM", &pid]).status().unwrap().success());
    let started = std::time::Instant::now();
    let ended = tokio::time::timeout(Duration::from_secs(10), stream.message())
        .await
        .expect("the stream ends when shutdown begins")
        .unwrap_err();
    assert_eq!(ended.code(), Code::Unavailable, "{ended:?}");
    assert!(
        ended.message().contains(&format!("after_position = {first}")),
        "{ended:?}"
    );
    let status = loop {
        if let Some(status) = server.0.try_wait().unwrap() {
            break status;
        }
        assert!(
            started.elapsed() < Duration::from_secs(15),
            "settle still running after SIGTERM"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert!(status.success(), "{status:?}");
    let _ = std::fs::remove_dir_all(dir);
}
