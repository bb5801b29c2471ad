//! A minimal HTTP/1.0 GET, enough for `<binary> healthcheck` inside slim images without curl.

use std::io::{Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::process::ExitCode;
use std::time::Duration;

/// GETs `http://{host}:{port}{path}` and succeeds on a 2xx status.
pub fn probe(host: &str, port: u16, path: &str, timeout: Duration) -> Result<(), String> {
    let addr = (host, port)
        .to_socket_addrs()
        .map_err(|e| format!("cannot resolve {host}:{port}: {e}"))?
        .next()
        .ok_or_else(|| format!("no address for {host}:{port}"))?;
    let mut stream = TcpStream::connect_timeout(&addr, timeout)
        .map_err(|e| format!("cannot connect to {addr}: {e}"))?;
    stream
        .set_read_timeout(Some(timeout))
        .map_err(|e| e.to_string())?;
    stream
        .set_write_timeout(Some(timeout))
        .map_err(|e| e.to_string())?;
    write!(stream, "GET {path} HTTP/1.0\r\nHost: {host}\r\n\r\n").map_err(|e| e.to_string())?;
    let mut head = [0u8; 32];
    let n = stream
        .read(&mut head)
        .map_err(|e| format!("no answer from {addr}: {e}"))?;
    let line = String::from_utf8_lossy(&head[..n]);
    let status = line.split_whitespace().nth(1).unwrap_or("");
    if status.starts_with('2') {
        Ok(())
    } else {
        Err(format!(
            "{addr}{path} answered {:?}",
            line.lines().next().unwrap_or("")
        ))
    }
}

/// The address a local probe should connect to for a server listening on `host`: the host
/// itself, or loopback when the server listens on every interface.
pub fn probe_host(host: &str) -> &str {
    match host {
        "0.0.0.0" | "" => "127.0.0.1",
        "::" | "[::]" => "::1",
        host => host,
    }
}

/// `<binary> healthcheck`: probes `path` of the server configured to listen on `host:port` and
/// returns the process exit code, with one line on stderr when unhealthy.
pub fn healthcheck(
    service: &str,
    host: &str,
    port: u16,
    path: &str,
    timeout: Duration,
) -> ExitCode {
    match probe(probe_host(host), port, path, timeout) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("{service}: unhealthy: {e}");
            ExitCode::FAILURE
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_probe_never_dials_the_wildcard_address() {
        assert_eq!(probe_host("0.0.0.0"), "127.0.0.1");
        assert_eq!(probe_host("::"), "::1");
        assert_eq!(probe_host("10.1.2.3"), "10.1.2.3");
    }

    #[test]
    fn a_closed_port_is_unhealthy() {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("port")
            .port();
        assert!(probe("127.0.0.1", port, "/health", Duration::from_millis(500)).is_err());
    }
}
