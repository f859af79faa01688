//! Benchmark server: serves pre-rendered responses from memory on loopback, so the server's
//! own cost stays out of the measurements. Routes and bodies come from a directory:
//! every file `<name>.json` is served at `/<name>` with the query string ignored, and
//! `routes.txt` maps request paths to file names and content types ("PATH FILE TYPE").
//!
//!   bench_server DIR   (prints the port, then serves until killed)

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Write};
use std::net::TcpListener;
use std::sync::Arc;

fn main() {
    let dir = std::env::args().nth(1).expect("usage: bench_server DIR");
    let routes = std::fs::read_to_string(format!("{dir}/routes.txt")).expect("routes.txt");
    let mut table: HashMap<String, (Vec<u8>, String)> = HashMap::new();
    for line in routes.lines().filter(|l| !l.trim().is_empty()) {
        let mut parts = line.split_whitespace();
        let (path, file, ctype) = (
            parts.next().unwrap(),
            parts.next().unwrap(),
            parts.next().unwrap(),
        );
        let body = std::fs::read(format!("{dir}/{file}")).expect("body file");
        let mut head = format!(
            "HTTP/1.1 200 OK\r\nContent-Type: {ctype}\r\nContent-Length: {}\r\nConnection: close\r\n",
            body.len()
        );
        for extra in parts {
            head.push_str(&extra.replacen('=', ": ", 1));
            head.push_str("\r\n");
        }
        head.push_str("\r\n");
        let mut resp = head.into_bytes();
        resp.extend_from_slice(&body);
        table.insert(path.to_string(), (resp, ctype.to_string()));
    }
    let table = Arc::new(table);
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    println!("{}", listener.local_addr().unwrap().port());
    std::io::stdout().flush().unwrap();
    for stream in listener.incoming() {
        let Ok(mut stream) = stream else { continue };
        let table = table.clone();
        std::thread::spawn(move || {
            let mut reader = BufReader::new(stream.try_clone().unwrap());
            let mut line = String::new();
            if reader.read_line(&mut line).is_err() {
                return;
            }
            loop {
                let mut h = String::new();
                if reader.read_line(&mut h).unwrap_or(0) == 0 || h.trim().is_empty() {
                    break;
                }
            }
            let target = line.split_whitespace().nth(1).unwrap_or("/");
            let path = target.split('?').next().unwrap_or("/");
            match table.get(path) {
                Some((resp, _)) => {
                    let _ = stream.write_all(resp);
                }
                None => {
                    let _ = stream.write_all(
                        b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
                    );
                }
            }
        });
    }
}
