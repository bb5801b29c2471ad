//! The HTTP floor for scripts/bench.sh: a bare actix-web handler, same worker model as the API.
//! `cargo run --release -p inference-api --example hello -- 127.0.0.1:18080 2`

use actix_web::{App, HttpResponse, HttpServer, web};

#[actix_web::main]
async fn main() -> std::io::Result<()> {
    let mut args = std::env::args().skip(1);
    let addr = args.next().unwrap_or_else(|| "127.0.0.1:18080".into());
    let workers: usize = args.next().and_then(|w| w.parse().ok()).unwrap_or(2);
    HttpServer::new(|| {
        App::new().route(
            "/",
            web::post().to(|| async { HttpResponse::Ok().body("hello") }),
        )
    })
    .workers(workers)
    .bind(addr)?
    .run()
    .await
}
