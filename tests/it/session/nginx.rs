//! Forward auth behind a real nginx (Debian's, `auth_request`): nginx asks
//! `/.portcullis/auth` about each request to its `/app/` and passes the identity headers on;
//! a browser signs in through nginx (sign_in, the provider, the callback) and lands on the
//! upstream's answer. Without trust, forward auth answers 403.

use std::process::{Child, Command, Stdio};
use std::time::Duration;

use serde_json::json;

use super::{Jar, echoed, embedded, location, navigate, sign_in};
use crate::harness::{Upstream, eventually, free_port};

const NGINX: &str = "/usr/sbin/nginx";

/// nginx in the foreground on `port` with a generated config, until dropped.
struct Nginx {
    child: Child,
    dir: tempfile::TempDir,
}

impl Drop for Nginx {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Nginx {
    fn error_log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("error.log")).unwrap_or_default()
    }
}

fn config(
    dir: &std::path::Path,
    port: u16,
    gw: u16,
    up: &str,
    cert: &std::path::Path,
    key: &std::path::Path,
) -> String {
    let d = dir.display();
    format!(
        r#"daemon off;
worker_processes 1;
pid {d}/nginx.pid;
error_log {d}/error.log info;
events {{ worker_connections 64; }}
http {{
  access_log off;
  client_body_temp_path {d}/body; proxy_temp_path {d}/proxy; fastcgi_temp_path {d}/fcgi;
  uwsgi_temp_path {d}/uwsgi; scgi_temp_path {d}/scgi;
  # A session past 4 KB comes back as several Set-Cookie chunks: nginx's default 4 KB header
  # buffer would answer 502 ("upstream sent too big header"), as with oauth2-proxy.
  proxy_buffer_size 32k; proxy_buffers 8 32k; proxy_busy_buffers_size 64k;
  large_client_header_buffers 4 32k;
  server {{
    listen 127.0.0.1:{port} ssl;
    server_name localhost;
    ssl_certificate {cert};
    ssl_certificate_key {key};
    location /app/ {{
      auth_request /.portcullis/auth;
      auth_request_set $user $upstream_http_x_auth_request_user;
      auth_request_set $groups $upstream_http_x_auth_request_groups;
      auth_request_set $signin $upstream_http_location;
      error_page 401 = @signin;
      proxy_set_header X-Auth-Request-User $user;
      proxy_set_header X-Auth-Request-Groups $groups;
      proxy_pass {up};
    }}
    location = /.portcullis/auth {{
      internal;
      proxy_pass https://127.0.0.1:{gw};
      proxy_ssl_server_name on;
      proxy_ssl_name localhost;
      proxy_pass_request_body off;
      proxy_set_header Content-Length "";
      proxy_set_header Host $http_host;
      proxy_set_header X-Original-URL $scheme://$http_host$request_uri;
      proxy_set_header X-Original-Method $request_method;
    }}
    location @signin {{
      if ($signin = "") {{ return 401; }}
      return 302 $signin;
    }}
    location / {{
      proxy_pass https://127.0.0.1:{gw};
      proxy_ssl_server_name on;
      proxy_ssl_name localhost;
      proxy_set_header Host $http_host;
      proxy_set_header X-Forwarded-Proto $scheme;
    }}
  }}
}}
"#,
        cert = cert.display(),
        key = key.display()
    )
}

async fn start_nginx(
    port: u16,
    gw: u16,
    up: &str,
    cert: &std::path::Path,
    key: &std::path::Path,
) -> Nginx {
    let dir = tempfile::tempdir().unwrap();
    let conf = dir.path().join("nginx.conf");
    std::fs::write(&conf, config(dir.path(), port, gw, up, cert, key)).unwrap();
    let child = Command::new(NGINX)
        .arg("-p")
        .arg(dir.path())
        .arg("-c")
        .arg(&conf)
        .arg("-e")
        .arg(dir.path().join("error.log"))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("nginx (make test-deps installs it)");
    let n = Nginx { child, dir };
    eventually("nginx to listen", Duration::from_secs(10), || async move {
        tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .is_ok()
    })
    .await;
    n
}

#[tokio::test(flavor = "multi_thread")]
async fn sign_in_through_nginx_auth_request() {
    let port = free_port();
    let nginx_origin = format!("https://localhost:{port}");
    let e = embedded(
        300,
        std::slice::from_ref(&nginx_origin),
        "[forwarded]\ntrusted_proxies = [\"127.0.0.1/32\"]\n",
    )
    .await;
    let behind = Upstream::start().await;
    let n = start_nginx(
        port,
        e.gw.public,
        &behind.url(),
        &e.gw.path("certs/gateway.crt"),
        &e.gw.path("certs/gateway.key"),
    )
    .await;
    let c = &e.client;

    // An API call through nginx without a session: nginx gets 401 and passes it on.
    let r = c.get(format!("{nginx_origin}/app/x")).send().await.unwrap();
    assert_eq!(r.status(), 401, "{}", n.error_log());
    // A navigation: 302 to the gateway's sign_in on nginx's origin, with the page to return to.
    let mut jar = Jar::default();
    let r = navigate(c, &mut jar, &format!("{nginx_origin}/app/page?q=1")).await;
    assert_eq!(r.status(), 302);
    let to = location(&r);
    assert!(
        to.starts_with(&format!("{nginx_origin}/.portcullis/sign_in?rd=")),
        "{to}"
    );

    let mut jar = Jar::default();
    let r = sign_in(
        c,
        &mut jar,
        &format!("{nginx_origin}/app/page?q=1"),
        "alice",
        "password",
    )
    .await;
    let seen = echoed(r).await;
    assert_eq!(seen["path"], "/app/page");
    assert_eq!(seen["query"], "q=1");
    assert_eq!(seen["headers"]["x-auth-request-user"], json!(["alice"]));
    assert_eq!(seen["headers"]["x-auth-request-groups"], json!(["/staff"]));
    assert_eq!(
        behind.hits(),
        1,
        "only the signed-in request reached the app behind nginx"
    );

    // The X-Forwarded-* form (Traefik, Caddy, Envoy) from a trusted peer.
    let ask = |uri: &str| {
        c.get(format!("{}/.portcullis/auth", e.origin()))
            .header("x-forwarded-method", "GET")
            .header("x-forwarded-proto", "https")
            .header("x-forwarded-host", format!("localhost:{port}"))
            .header("x-forwarded-uri", uri)
    };
    let r = ask("/app/y")
        .header("cookie", jar.header())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["x-auth-request-user"], "alice");
    assert!(r.headers().contains_key("x-portcullis-assertion"));
    assert_eq!(ask("/app/y").send().await.unwrap().status(), 401);
    assert_eq!(
        ask("/nowhere")
            .header("cookie", jar.header())
            .send()
            .await
            .unwrap()
            .status(),
        403
    );
    let r = c
        .get(format!("{}/.portcullis/auth", e.origin()))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400, "which request to decide is missing");

    // bob is signed in but not allowed: nginx answers 403.
    let mut bob = Jar::default();
    let r = sign_in(
        c,
        &mut bob,
        &format!("{nginx_origin}/app/"),
        "bob",
        "password",
    )
    .await;
    assert_eq!(r.status(), 403);
    assert_eq!(behind.hits(), 1);
}

#[tokio::test(flavor = "multi_thread")]
async fn forward_auth_answers_trusted_proxies_only() {
    let e = embedded(300, &[], "").await;
    let r = e
        .client
        .get(format!("{}/.portcullis/auth", e.origin()))
        .header("x-original-url", format!("{}/app/x", e.origin()))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);
    // Nor are the X-Forwarded-* of an untrusted peer.
    let r = e
        .client
        .get(format!("{}/.portcullis/auth", e.origin()))
        .header("x-forwarded-method", "GET")
        .header("x-forwarded-proto", "https")
        .header("x-forwarded-host", "localhost")
        .header("x-forwarded-uri", "/app/x")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);
}
