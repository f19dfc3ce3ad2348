//! Reading the Terraform under `terraform/` with `hcl-rs`: modules as parsed bodies, and the
//! few expression shapes the checks need (object keys through `merge`, string lists, `local.`
//! references resolved to their values). No evaluation beyond that.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use hcl::expr::{Expression, ObjectKey, TraversalOperator};
use hcl::{Block, Body};

/// Every module under `terraform/`, by directory relative to it (`""` is the root module), as
/// the concatenation of its `.tf` files (one namespace, as Terraform sees it).
pub struct Stack {
    pub modules: BTreeMap<String, Body>,
}

pub fn terraform_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../terraform")
}

pub fn module_source(dir: &Path) -> String {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("reading {}: {e}", dir.display()))
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "tf"))
        .collect();
    files.sort();
    files
        .iter()
        .map(|f| std::fs::read_to_string(f).unwrap())
        .collect::<Vec<_>>()
        .join("\n")
}

impl Stack {
    pub fn load() -> Self {
        let root = terraform_dir();
        let mut modules = BTreeMap::new();
        let mut dirs = vec![root.clone()];
        while let Some(dir) = dirs.pop() {
            for entry in std::fs::read_dir(&dir).unwrap() {
                let path = entry.unwrap().path();
                if path.is_dir() && !path.file_name().unwrap().to_string_lossy().starts_with('.') {
                    dirs.push(path);
                }
            }
            let source = module_source(&dir);
            if source.trim().is_empty() {
                continue;
            }
            let rel = dir
                .strip_prefix(&root)
                .unwrap()
                .to_string_lossy()
                .into_owned();
            let body = hcl::parse(&source)
                .unwrap_or_else(|e| panic!("terraform/{rel} does not parse: {e}"));
            modules.insert(rel, body);
        }
        Self { modules }
    }

    pub fn module(&self, rel: &str) -> &Body {
        self.modules
            .get(rel)
            .unwrap_or_else(|| panic!("no module terraform/{rel}"))
    }

    /// The module with `source` replaced (for the tests that break things on purpose).
    pub fn with_module(&self, rel: &str, source: &str) -> Self {
        let mut modules = BTreeMap::new();
        for (k, v) in &self.modules {
            modules.insert(k.clone(), v.clone());
        }
        modules.insert(
            rel.to_owned(),
            hcl::parse(source).expect("edited module parses"),
        );
        Self { modules }
    }
}

pub fn label(block: &Block, i: usize) -> Option<&str> {
    block.labels().get(i).map(|l| l.as_str())
}

/// Blocks `kind "type" "name"` (e.g. `resource "aws_sqs_queue" …`) with the given type.
pub fn blocks<'a>(body: &'a Body, kind: &str, ty: &str) -> Vec<&'a Block> {
    body.blocks()
        .filter(|b| b.identifier() == kind && label(b, 0) == Some(ty))
        .collect()
}

pub fn one<'a>(body: &'a Body, kind: &str, ty: &str) -> &'a Block {
    let found = blocks(body, kind, ty);
    assert_eq!(found.len(), 1, "expected one {kind} {ty}");
    found[0]
}

pub fn attr<'a>(body: &'a Body, key: &str) -> Option<&'a Expression> {
    body.attributes().find(|a| a.key() == key).map(|a| a.expr())
}

pub fn children<'a>(body: &'a Body, ident: &str) -> Vec<&'a Body> {
    body.blocks()
        .filter(|b| b.identifier() == ident)
        .map(|b| b.body())
        .collect()
}

pub fn text(expr: &Expression) -> String {
    hcl::format::to_string(expr).unwrap_or_else(|_| format!("{expr:?}"))
}

/// Every `locals` attribute of a module.
pub fn locals(body: &Body) -> BTreeMap<String, Expression> {
    children(body, "locals")
        .into_iter()
        .flat_map(|b| {
            b.attributes()
                .map(|a| (a.key().to_owned(), a.expr().clone()))
        })
        .collect()
}

pub fn key_name(key: &ObjectKey) -> String {
    match key {
        ObjectKey::Identifier(i) => i.to_string(),
        ObjectKey::Expression(Expression::String(s)) => s.clone(),
        ObjectKey::Expression(e) => text(e),
        other => format!("{other:?}"),
    }
}

/// `expr` with `local.x[...]` references replaced by the locals' values (indexing into object
/// literals where it can), so lists and maps built from locals read as literals.
pub fn resolve(expr: &Expression, locals: &BTreeMap<String, Expression>) -> Expression {
    match expr {
        Expression::Traversal(t) => {
            let is_local = matches!(&t.expr, Expression::Variable(v) if v.as_str() == "local");
            let Some(TraversalOperator::GetAttr(name)) = t.operators.first().filter(|_| is_local)
            else {
                return expr.clone();
            };
            let Some(mut value) = locals.get(name.as_str()).map(|v| resolve(v, locals)) else {
                return expr.clone();
            };
            for op in &t.operators[1..] {
                let key = match op {
                    TraversalOperator::GetAttr(i) => i.to_string(),
                    TraversalOperator::Index(Expression::String(s)) => s.clone(),
                    _ => return expr.clone(),
                };
                let Expression::Object(obj) = &value else {
                    return expr.clone();
                };
                let Some(next) = obj.iter().find(|(k, _)| key_name(k) == key) else {
                    return expr.clone();
                };
                value = resolve(next.1, locals);
            }
            value
        }
        Expression::Array(items) => {
            Expression::Array(items.iter().map(|e| resolve(e, locals)).collect())
        }
        Expression::Object(obj) => Expression::Object(
            obj.iter()
                .map(|(k, v)| (k.clone(), resolve(v, locals)))
                .collect(),
        ),
        Expression::FuncCall(f) => {
            let mut f = (**f).clone();
            f.args = f.args.iter().map(|e| resolve(e, locals)).collect();
            Expression::FuncCall(Box::new(f))
        }
        other => other.clone(),
    }
}

/// The keys of an object literal, through `merge(...)`.
pub fn object_keys(expr: &Expression) -> BTreeSet<String> {
    match expr {
        Expression::Object(obj) => obj.keys().map(key_name).collect(),
        Expression::FuncCall(f) if f.name.name.as_str() == "merge" => {
            f.args.iter().flat_map(object_keys).collect()
        }
        _ => BTreeSet::new(),
    }
}

/// The string literals of a list, through `concat(...)`.
pub fn strings(expr: &Expression) -> Vec<String> {
    match expr {
        Expression::Array(items) => items.iter().flat_map(strings).collect(),
        Expression::String(s) => vec![s.clone()],
        Expression::FuncCall(f) if f.name.name.as_str() == "concat" => {
            f.args.iter().flat_map(strings).collect()
        }
        _ => Vec::new(),
    }
}

pub fn string_attr(body: &Body, key: &str) -> Option<String> {
    match attr(body, key)? {
        Expression::String(s) => Some(s.clone()),
        _ => None,
    }
}

pub fn number_field(obj: &Expression, key: &str) -> Option<u64> {
    let Expression::Object(o) = obj else {
        return None;
    };
    match o.iter().find(|(k, _)| key_name(k) == key)?.1 {
        Expression::Number(n) => n.as_u64(),
        _ => None,
    }
}

pub fn field<'a>(obj: &'a Expression, key: &str) -> Option<&'a Expression> {
    let Expression::Object(o) = obj else {
        return None;
    };
    o.iter().find(|(k, _)| key_name(k) == key).map(|(_, v)| v)
}

/// Collects findings: an empty list means the check passed.
#[derive(Default)]
pub struct Findings(pub Vec<String>);

impl Findings {
    pub fn check(&mut self, ok: bool, what: impl FnOnce() -> String) {
        if !ok {
            self.0.push(what());
        }
    }

    pub fn into_result(self) -> Result<(), Vec<String>> {
        if self.0.is_empty() {
            Ok(())
        } else {
            Err(self.0)
        }
    }
}
