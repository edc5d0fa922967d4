//! SMTP delivery of the outbox, against a small SMTP server run by the test.

use app::server::mail::{self, Mailer};
use tokio::{
    io::{AsyncBufReadExt, AsyncWriteExt, BufReader},
    net::TcpListener,
    sync::mpsc,
};

use crate::common::TestApp;

crate::on_both_databases!(invitations_are_delivered_by_smtp_once, undelivered_mail_stays_and_is_retried);

/// Accepts SMTP sessions on a free local port and passes on each message's data.
async fn smtp_server() -> (String, mpsc::UnboundedReceiver<String>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("smtp://{}", listener.local_addr().unwrap());
    let (messages, received) = mpsc::unbounded_channel();
    tokio::spawn(async move {
        while let Ok((socket, _)) = listener.accept().await {
            let messages = messages.clone();
            tokio::spawn(async move {
                let (read, mut write) = socket.into_split();
                let mut lines = BufReader::new(read).lines();
                write.write_all(b"220 test ESMTP\r\n").await.unwrap();
                while let Ok(Some(line)) = lines.next_line().await {
                    let verb = line.split_whitespace().next().unwrap_or_default().to_ascii_uppercase();
                    let reply: &[u8] = match verb.as_str() {
                        "EHLO" | "HELO" => b"250-test\r\n250 8BITMIME\r\n",
                        "DATA" => {
                            write.write_all(b"354 go on\r\n").await.unwrap();
                            let mut data = String::new();
                            while let Ok(Some(line)) = lines.next_line().await {
                                if line == "." {
                                    break;
                                }
                                data.push_str(&line);
                                data.push('\n');
                            }
                            let _ = messages.send(data);
                            b"250 queued\r\n"
                        }
                        "QUIT" => {
                            let _ = write.write_all(b"221 bye\r\n").await;
                            break;
                        }
                        _ => b"250 ok\r\n",
                    };
                    write.write_all(reply).await.unwrap();
                }
            });
        }
    });
    (url, received)
}

async fn invitations_are_delivered_by_smtp_once(app: TestApp) {
    let mut org = app.organization("ada@example.com", "Engines").await;
    // Ada's address confirmation was delivered already: only the invitation waits.
    sqlx::query("DELETE FROM outbox").execute(app.db.pool()).await.unwrap();
    let invited =
        org.admin.call("/_fn/members/invite", &[("email", "grace@example.com"), ("role_member", "on")]).await;
    assert!(invited.status.is_success(), "{}", invited.body);
    let token = app.emailed_token("grace@example.com").await;

    let (url, mut received) = smtp_server().await;
    let mailer = Mailer::new(&url, "Chancery <chancery@example.com>").unwrap();
    assert_eq!(mail::deliver_pending(&app.db, &mailer).await.unwrap(), 1);
    let data = received.recv().await.unwrap();
    assert!(data.contains("To: grace@example.com"), "{data}");
    assert!(data.contains("From: Chancery <chancery@example.com>"), "{data}");
    assert!(data.contains("Subject: Join Engines on Chancery"), "{data}");
    // The body is quoted-printable: join its soft line breaks to read the link.
    let text = data.replace("=\n", "").replace("=3D", "=");
    assert!(text.contains(&format!("/invite/{token}")), "the invitation link is in the email: {data}");

    // Delivered once: the next round finds nothing to send.
    assert_eq!(mail::deliver_pending(&app.db, &mailer).await.unwrap(), 0);
    let outbox = mail::outbox(&app.db, 10).await.unwrap();
    assert!(outbox[0].sent_at.is_some());
    assert_eq!((outbox[0].attempts, outbox[0].last_error.as_deref()), (1, None));
    let secret = token.rsplit('_').next().unwrap();
    assert!(!outbox[0].body.contains(secret), "a delivered link is not kept: {}", outbox[0].body);
    assert!(outbox[0].body.contains("[link removed after delivery]"));
}

async fn undelivered_mail_stays_and_is_retried(app: TestApp) {
    let mut org = app.organization("ada@example.com", "Engines").await;
    // Ada's address confirmation was delivered already: only the invitation waits.
    sqlx::query("DELETE FROM outbox").execute(app.db.pool()).await.unwrap();
    org.admin.call("/_fn/members/invite", &[("email", "grace@example.com"), ("role_member", "on")]).await;

    // Nothing listens on this port: the send fails, and the message waits for a retry.
    let closed = TcpListener::bind("127.0.0.1:0").await.unwrap().local_addr().unwrap();
    let down = Mailer::new(&format!("smtp://{closed}"), "chancery@example.com").unwrap();
    assert_eq!(mail::deliver_pending(&app.db, &down).await.unwrap(), 0);
    let outbox = mail::outbox(&app.db, 10).await.unwrap();
    assert_eq!((outbox.len(), outbox[0].attempts, outbox[0].sent_at), (1, 1, None));
    assert!(outbox[0].last_error.is_some());

    // Not retried before its back-off ends, even by a working server.
    let (url, mut received) = smtp_server().await;
    let up = Mailer::new(&url, "chancery@example.com").unwrap();
    assert_eq!(mail::deliver_pending(&app.db, &up).await.unwrap(), 0);
    sqlx::query("UPDATE outbox SET next_attempt_at = 0").execute(app.db.pool()).await.unwrap();
    assert_eq!(mail::deliver_pending(&app.db, &up).await.unwrap(), 1);
    assert!(received.recv().await.unwrap().contains("grace@example.com"));
    let outbox = mail::outbox(&app.db, 10).await.unwrap();
    assert_eq!((outbox[0].attempts, outbox[0].sent_at.is_some()), (2, true));
}

#[tokio::test]
async fn a_bad_smtp_configuration_is_refused_at_start() {
    assert!(Mailer::new("ftp://mail.example.com", "chancery@example.com").is_err());
    assert!(Mailer::new("smtp://mail.example.com", "not an address").is_err());
}
