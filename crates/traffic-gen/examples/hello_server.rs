//! A bare HTTP target for `scripts/bench-traffic-gen.sh`: `POST /predict` answers a fixed small
//! JSON body at once, `GET /health` answers 200. Nothing else, so the load tool is measured.
//!
//! `cargo run --release -p traffic-gen --example hello_server -- 127.0.0.1:18090 1`

use actix_web::{App, HttpResponse, HttpServer, web};

const BODY: &str = r#"{"model":"hello","version":"0","predictions":[{"label":"benign","class_index":1,"confidence":0.98}]}"#;

#[actix_web::main]
async fn main() -> std::io::Result<()> {
    let mut args = std::env::args().skip(1);
    let addr = args.next().unwrap_or_else(|| "127.0.0.1:18090".into());
    let workers: usize = args.next().and_then(|w| w.parse().ok()).unwrap_or(1);
    HttpServer::new(|| {
        App::new()
            .route(
                "/predict",
                web::post().to(|_body: web::Bytes| async {
                    HttpResponse::Ok()
                        .content_type("application/json")
                        .body(BODY)
                }),
            )
            .route("/health", web::get().to(HttpResponse::Ok))
    })
    .workers(workers)
    .backlog(4096)
    .bind(addr)?
    .run()
    .await
}
