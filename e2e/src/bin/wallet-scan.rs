//! Signs in to a SecurityGuard API with a new Solana wallet and scans what it is given, as a
//! wallet would: `wallet-scan http://API DOMAIN...` prints each answer as JSON. The demo ends
//! with it.

use securityguard_e2e::node::{ApiClient, new_wallet};
use serde_json::json;

#[tokio::main]
async fn main() {
    let mut args = std::env::args().skip(1);
    let Some(base) = args.next() else {
        eprintln!("usage: wallet-scan http://HOST:PORT DOMAIN...");
        std::process::exit(2);
    };
    let domains: Vec<String> = args.collect();
    let api = ApiClient::new(base);
    let wallet = new_wallet();
    let token = api.sign_in(&wallet).await;
    match api.post("/v1/scan/domains", Some(&token), &json!({"domains": domains})).await {
        Ok((200, body)) => {
            println!("{}", serde_json::to_string_pretty(&body).unwrap_or_default());
        }
        Ok((status, body)) => {
            eprintln!("the API answered {status}: {body}");
            std::process::exit(1);
        }
        Err(e) => {
            eprintln!("the API did not answer: {e}");
            std::process::exit(1);
        }
    }
}
