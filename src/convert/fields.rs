//! Reading a KEDA document field by field. A value of the wrong shape, and every field left
//! over, becomes a note at its path: one reader does this for every field instead of a
//! read-check-note block per field.

use super::{Mapping, Notes};
use serde_json::Value;

/// `path.key`, or `path["key"]` when the key would not read as one path segment.
pub(super) fn join(path: &str, key: &str) -> String {
    if key.is_empty() || key.contains(['.', '/', '[', ' ']) {
        format!("{path}[{key:?}]")
    } else if path.is_empty() {
        key.to_string()
    } else {
        format!("{path}.{key}")
    }
}

/// What a field's value must be read as, and the note when it is something else.
pub(super) trait Shape<'v>: Sized {
    const NOT: &'static str;
    fn of(v: &'v Value) -> Option<Self>;
}

impl Shape<'_> for i32 {
    const NOT: &'static str = "not an integer; dropped";
    fn of(v: &Value) -> Option<Self> {
        v.as_i64().and_then(|i| i32::try_from(i).ok())
    }
}

impl Shape<'_> for String {
    const NOT: &'static str = "not a string; dropped";
    fn of(v: &Value) -> Option<Self> {
        v.as_str().map(str::to_string)
    }
}

impl<'v> Shape<'v> for &'v Mapping {
    const NOT: &'static str = "not a mapping; dropped";
    fn of(v: &'v Value) -> Option<Self> {
        v.as_object()
    }
}

impl<'v> Shape<'v> for &'v [Value] {
    const NOT: &'static str = "not a list; dropped";
    fn of(v: &'v Value) -> Option<Self> {
        v.as_array().map(Vec::as_slice)
    }
}

/// A Kubernetes quantity as the HPA's `tolerance` (the only number read) takes it: `0.05`,
/// `"0.05"` or `"50m"`.
impl Shape<'_> for f64 {
    const NOT: &'static str = "not a number; dropped";
    fn of(v: &Value) -> Option<Self> {
        if let Some(x) = v.as_f64() {
            return Some(x);
        }
        let s = v.as_str()?.trim();
        match s.strip_suffix('m') {
            Some(milli) => milli.parse::<f64>().ok().map(|x| x / 1000.0),
            None => s.parse().ok(),
        }
        .filter(|x| x.is_finite())
    }
}

/// `v` read as a `T`; anything else is noted at `path` and dropped.
pub(super) fn read<'v, T: Shape<'v>>(v: &'v Value, path: &str, n: &mut Notes) -> Option<T> {
    let t = T::of(v);
    if t.is_none() {
        n.at(path, T::NOT);
    }
    t
}

/// A mapping's fields, taken one by one; what is left over is noted.
pub(super) struct Fields<'v> {
    path: String,
    rest: Vec<(&'v str, &'v Value)>,
}

impl<'v> Fields<'v> {
    pub(super) fn new(path: impl Into<String>, map: &'v Mapping) -> Self {
        Self {
            path: path.into(),
            rest: map.iter().map(|(k, v)| (k.as_str(), v)).collect(),
        }
    }
    pub(super) fn path(&self, key: &str) -> String {
        join(&self.path, key)
    }
    /// The field's value; `key: null` counts as absent.
    pub(super) fn take(&mut self, key: &str) -> Option<&'v Value> {
        let i = self.rest.iter().position(|(k, _)| *k == key)?;
        let (_, v) = self.rest.remove(i);
        (!v.is_null()).then_some(v)
    }
    /// The field read as a `T` (see [`read`]).
    pub(super) fn get<T: Shape<'v>>(&mut self, key: &str, n: &mut Notes) -> Option<T> {
        self.get_at(key, n).map(|(_, t)| t)
    }
    /// The field read as a `T`, with its path.
    pub(super) fn get_at<T: Shape<'v>>(&mut self, key: &str, n: &mut Notes) -> Option<(String, T)> {
        let v = self.take(key)?;
        let path = self.path(key);
        read(v, &path, n).map(|t| (path, t))
    }
    /// The entries of the list field, each with its path `key[i]`.
    pub(super) fn items(&mut self, key: &str, n: &mut Notes) -> Option<Vec<(String, &'v Value)>> {
        let (path, list) = self.get_at::<&[Value]>(key, n)?;
        Some(
            list.iter()
                .enumerate()
                .map(|(i, v)| (format!("{path}[{i}]"), v))
                .collect(),
        )
    }
    /// A field with nothing to carry over: noted with `msg` when it is set.
    pub(super) fn discard(&mut self, key: &str, n: &mut Notes, msg: &str) {
        if self.take(key).is_some() {
            n.at(&self.path(key), msg);
        }
    }
    /// Notes every field not taken.
    pub(super) fn finish(self, n: &mut Notes, msg: &str) {
        for (k, _) in self.rest {
            n.at(&join(&self.path, k), msg);
        }
    }
}
