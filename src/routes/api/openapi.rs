//! `/api/v1/openapi.json`: the API described as OpenAPI 3, written by hand beside the route
//! table (`openapi.json`); a test keeps the two in step both ways.

use actix_web::HttpResponse;

pub const DOCUMENT: &str = include_str!("openapi.json");

/// Open to anyone: it describes routes, never a file.
pub async fn document() -> HttpResponse {
    HttpResponse::Ok()
        .content_type(mime::APPLICATION_JSON)
        .body(DOCUMENT)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::routes::{RouteInfo, table};

    fn documented() -> Vec<(String, String)> {
        let doc: serde_json::Value = serde_json::from_str(DOCUMENT).expect("valid JSON");
        assert!(
            doc["openapi"].as_str().is_some_and(|v| v.starts_with("3.")),
            "OpenAPI 3"
        );
        let mut found = Vec::new();
        for (path, item) in doc["paths"].as_object().expect("paths") {
            for method in item.as_object().expect("a path item").keys() {
                if method != "parameters" {
                    found.push((method.to_ascii_uppercase(), path.clone()));
                }
            }
        }
        found.sort();
        found
    }

    #[test]
    fn the_document_names_every_api_route_of_the_table_and_no_other() {
        let mut routed: Vec<(String, String)> = table()
            .into_iter()
            .filter(|RouteInfo { path, .. }| path.starts_with("/api/"))
            .map(|r| (r.method.to_string(), r.path.to_owned()))
            .collect();
        routed.sort();
        assert_eq!(documented(), routed);
    }
}
