//! YAML documents as JSON values, with the line of every field, read with serde-saphyr
//! (maintained, panic-free, with nesting and size budgets against hostile input). The values
//! are decoded into the spec as JSON files are, so both formats give the same errors; the lines
//! let those errors point into the file.

use serde::de::{self, Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_saphyr::{SnippetMode, Spanned};
use std::collections::HashMap;
use std::fmt;

/// One YAML document: its value, and the line (1-based) of each field path in it
/// (`spec.triggers[0].metadata.taskQueue`, the paths validation errors use).
#[derive(Debug)]
pub struct Document {
    pub value: serde_json::Value,
    lines: HashMap<String, u64>,
}

impl Document {
    /// The line of `path`, or of its nearest parent that has one (an error about a field that
    /// is missing points at the object that lacks it).
    pub fn line_of(&self, path: &str) -> Option<u64> {
        let mut p = path;
        loop {
            if let Some(l) = self.lines.get(p) {
                return Some(*l);
            }
            let cut = p.rfind(['.', '['])?;
            p = &p[..cut];
        }
    }
}

/// A syntax (or budget) error: where, and what. The message never quotes the source line (a
/// line may hold a credential).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SyntaxError {
    /// 0-based index of the document the error is in.
    pub document: usize,
    pub line: Option<u64>,
    pub message: String,
}

/// Nesting deeper than this is an error (budget), whatever the stack.
pub const MAX_DEPTH: usize = 24;

/// Every non-empty document of `content`.
pub fn documents(content: &str) -> Result<Vec<Document>, SyntaxError> {
    // YAML 1.2 core schema, as the YAML library this replaced (serde_yaml 0.9) and as
    // Kubernetes: `yes`/`on` are strings, `0755` and `1_000` are not numbers.
    let mut budget = serde_saphyr::Budget::default();
    budget.max_depth = MAX_DEPTH;
    let options = serde_saphyr::options! {
        // A spec nests 8 levels deep; each level costs tens of KB of stack in a debug build,
        // and the parser's default limit (64) overflowed a 2 MiB thread there (fuzz_config).
        budget: Some(budget),
        strict_booleans: true,
        leading_zero_numbers_as_strings: true,
        underscored_numbers_as_strings: true,
    };
    let nodes: Vec<Spanned<Node>> = serde_saphyr::from_str_multiple_with_options(content, options)
        .map_err(|e| {
            let line = e.location().map(|l| l.line());
            let message = e
                .without_snippet()
                .render_with_options(serde_saphyr::render_options! { snippets: SnippetMode::Off });
            SyntaxError {
                document: line.map_or(0, |l| document_at(content, l)),
                line,
                message,
            }
        })?;
    Ok(nodes
        .into_iter()
        .filter(|n| !matches!(n.value, Node::Null))
        .map(|root| {
            let mut lines = HashMap::new();
            let value = root.value.into_json(String::new(), &mut lines);
            Document { value, lines }
        })
        .collect())
}

/// The index of the document that holds `line` (1-based): the `---` separators before it, not
/// counting one that opens the file.
fn document_at(content: &str, line: u64) -> usize {
    let mut seen_content = false;
    let mut doc = 0;
    for l in content.lines().take(line.saturating_sub(1) as usize) {
        if l.starts_with("---") {
            if seen_content {
                doc += 1;
            }
            seen_content = false;
        } else if !l.trim().is_empty() && !l.trim_start().starts_with('#') {
            seen_content = true;
        }
    }
    doc
}

/// A YAML node whose children carry their location.
enum Node {
    Null,
    Bool(bool),
    Int(i64),
    UInt(u64),
    Float(f64),
    Str(String),
    Seq(Vec<Spanned<Node>>),
    Map(Vec<(Node, Spanned<Node>)>),
}

impl Node {
    fn into_json(self, path: String, lines: &mut HashMap<String, u64>) -> serde_json::Value {
        use serde_json::Value;
        match self {
            Node::Null => Value::Null,
            Node::Bool(b) => Value::Bool(b),
            Node::Int(i) => Value::from(i),
            Node::UInt(u) => Value::from(u),
            // JSON has no NaN or infinity: keep the text, so a number field rejects it.
            Node::Float(f) => serde_json::Number::from_f64(f)
                .map_or_else(|| Value::String(f.to_string()), Value::Number),
            Node::Str(s) => Value::String(s),
            Node::Seq(items) => Value::Array(
                items
                    .into_iter()
                    .enumerate()
                    .map(|(i, item)| {
                        let p = format!("{path}[{i}]");
                        lines.insert(p.clone(), item.referenced.line());
                        item.value.into_json(p, lines)
                    })
                    .collect(),
            ),
            Node::Map(entries) => {
                let mut map = serde_json::Map::new();
                for (k, v) in entries {
                    let key = k.key_text();
                    let p = if path.is_empty() {
                        key.clone()
                    } else {
                        format!("{path}.{key}")
                    };
                    lines.insert(p.clone(), v.referenced.line());
                    map.insert(key, v.value.into_json(p, lines));
                }
                Value::Object(map)
            }
        }
    }

    /// A mapping key as text (JSON keys are strings; YAML's may be numbers or booleans).
    fn key_text(&self) -> String {
        match self {
            Node::Str(s) => s.clone(),
            Node::Bool(b) => b.to_string(),
            Node::Int(i) => i.to_string(),
            Node::UInt(u) => u.to_string(),
            Node::Float(f) => f.to_string(),
            Node::Null => "null".into(),
            Node::Seq(_) | Node::Map(_) => "<complex key>".into(),
        }
    }
}

impl<'de> Deserialize<'de> for Node {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(NodeVisitor)
    }
}

struct NodeVisitor;

impl<'de> Visitor<'de> for NodeVisitor {
    type Value = Node;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("any YAML value")
    }
    fn visit_bool<E: de::Error>(self, v: bool) -> Result<Node, E> {
        Ok(Node::Bool(v))
    }
    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Node, E> {
        Ok(Node::Int(v))
    }
    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Node, E> {
        Ok(Node::UInt(v))
    }
    fn visit_i128<E: de::Error>(self, v: i128) -> Result<Node, E> {
        Ok(i64::try_from(v).map_or(Node::Float(v as f64), Node::Int))
    }
    fn visit_u128<E: de::Error>(self, v: u128) -> Result<Node, E> {
        Ok(u64::try_from(v).map_or(Node::Float(v as f64), Node::UInt))
    }
    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Node, E> {
        Ok(Node::Float(v))
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<Node, E> {
        Ok(Node::Str(v.to_owned()))
    }
    fn visit_string<E: de::Error>(self, v: String) -> Result<Node, E> {
        Ok(Node::Str(v))
    }
    fn visit_bytes<E: de::Error>(self, v: &[u8]) -> Result<Node, E> {
        Ok(Node::Str(String::from_utf8_lossy(v).into_owned()))
    }
    fn visit_unit<E: de::Error>(self) -> Result<Node, E> {
        Ok(Node::Null)
    }
    fn visit_none<E: de::Error>(self) -> Result<Node, E> {
        Ok(Node::Null)
    }
    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Node, D::Error> {
        Node::deserialize(d)
    }
    fn visit_newtype_struct<D: Deserializer<'de>>(self, d: D) -> Result<Node, D::Error> {
        Node::deserialize(d)
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Node, A::Error> {
        let mut items = Vec::new();
        while let Some(item) = seq.next_element::<Spanned<Node>>()? {
            items.push(item);
        }
        Ok(Node::Seq(items))
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Node, A::Error> {
        let mut entries = Vec::new();
        while let Some(k) = map.next_key::<Node>()? {
            entries.push((k, map.next_value::<Spanned<Node>>()?));
        }
        Ok(Node::Map(entries))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deep_nesting_is_an_error_not_a_stack_overflow() {
        for depth in [MAX_DEPTH + 1, 100, 10_000] {
            let y = format!("spec: {}1{}\n", "[".repeat(depth), "]".repeat(depth));
            let e = documents(&y).unwrap_err();
            assert!(
                e.message.contains("depth") || e.message.contains("recursion"),
                "{depth}: {e:?}"
            );
        }
        let ok = format!(
            "a: {}1{}\n",
            "[".repeat(MAX_DEPTH - 2),
            "]".repeat(MAX_DEPTH - 2)
        );
        assert!(documents(&ok).is_ok());
    }

    #[test]
    fn values_and_lines_of_every_field() {
        let yaml = "a: 1\nb:\n  c: [x, 2.5]\n  d:\n    - e: true\n---\n---\nf: ~\n";
        let docs = documents(yaml).unwrap();
        assert_eq!(docs.len(), 2, "the empty document is skipped");
        assert_eq!(
            docs[0].value,
            serde_json::json!({"a": 1, "b": {"c": ["x", 2.5], "d": [{"e": true}]}})
        );
        assert_eq!(docs[0].line_of("a"), Some(1));
        assert_eq!(docs[0].line_of("b.d[0].e"), Some(5));
        // A missing field points at its parent.
        assert_eq!(docs[0].line_of("b.d[0].missing"), Some(5));
        assert_eq!(docs[1].line_of("f"), Some(8));
    }

    #[test]
    fn syntax_errors_name_the_document_and_line_but_not_the_source() {
        let yaml = "a: 1\n---\nb: 2\n---\napiKey: s3cr3t\nc: [unclosed\n";
        let e = documents(yaml).unwrap_err();
        assert_eq!(e.document, 2, "{e:?}");
        assert!(e.line.is_some_and(|l| l >= 6), "{e:?}");
        assert!(!e.message.contains("s3cr3t"), "{e:?}");
    }

    #[test]
    fn yaml_1_2_scalars_and_what_json_cannot_hold() {
        let docs =
            documents("b: yes\no: 0755\nu: 1_000\nbig: 123456789012345678901234567890\n").unwrap();
        let v = &docs[0].value;
        // YAML 1.2 core, as serde_yaml and Kubernetes read it.
        assert_eq!(
            (&v["b"], &v["o"], &v["u"]),
            (
                &serde_json::json!("yes"),
                &serde_json::json!("0755"),
                &serde_json::json!("1_000")
            )
        );
        assert!(v["big"].is_number(), "{v:?}");
        // Not a number any field takes: an error at its line.
        let e = documents("a: 1\nn: .nan\n").unwrap_err();
        assert_eq!(e.line, Some(2), "{e:?}");
    }
}
