//! Label values shared by several services. Every value comes from a closed set, never from
//! user input, so no request can create a new series.

use prometheus_client::encoding::{EncodeLabelValue, LabelValueEncoder};
use std::fmt::Write;

/// HTTP method as a closed set (anything unusual is `OTHER`).
#[derive(Clone, Copy, Debug, Hash, PartialEq, Eq)]
pub enum Method {
    Get,
    Post,
    Put,
    Delete,
    Patch,
    Head,
    Options,
    Other,
}

impl Method {
    pub fn as_str(self) -> &'static str {
        match self {
            Method::Get => "GET",
            Method::Post => "POST",
            Method::Put => "PUT",
            Method::Delete => "DELETE",
            Method::Patch => "PATCH",
            Method::Head => "HEAD",
            Method::Options => "OPTIONS",
            Method::Other => "OTHER",
        }
    }
}

impl From<&actix_web::http::Method> for Method {
    fn from(m: &actix_web::http::Method) -> Self {
        use actix_web::http::Method as M;
        match *m {
            M::GET => Method::Get,
            M::POST => Method::Post,
            M::PUT => Method::Put,
            M::DELETE => Method::Delete,
            M::PATCH => Method::Patch,
            M::HEAD => Method::Head,
            M::OPTIONS => Method::Options,
            _ => Method::Other,
        }
    }
}

impl EncodeLabelValue for Method {
    fn encode(&self, encoder: &mut LabelValueEncoder) -> Result<(), std::fmt::Error> {
        encoder.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unusual_methods_collapse_to_other() {
        let m = actix_web::http::Method::from_bytes(b"PROPFIND").expect("valid method");
        assert_eq!(Method::from(&m), Method::Other);
        assert_eq!(
            Method::from(&actix_web::http::Method::POST).as_str(),
            "POST"
        );
    }
}
