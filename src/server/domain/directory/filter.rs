//! The filter language of directory queries (RFC 7644 §3.4.2.2) as a tree, and its translation
//! into parameterised SQL. The SCIM layer parses the text; nothing of the filter is ever
//! spliced into SQL: attribute names map to fixed column expressions and every value is bound.

use serde_json::Value;

/// A schema-qualified attribute path: `emails.value`, `name.givenName`,
/// `urn:...:enterprise:2.0:User:department`. Names are kept as written; lookups ignore case.
#[derive(Clone, Debug, PartialEq)]
pub struct AttrPath {
    pub uri: Option<String>,
    pub attr: String,
    pub sub: Option<String>,
}

impl AttrPath {
    /// `attr` or `attr.sub`, lower-cased, without the schema URI.
    pub fn key(&self) -> String {
        match &self.sub {
            Some(sub) => format!("{}.{}", self.attr, sub).to_ascii_lowercase(),
            None => self.attr.to_ascii_lowercase(),
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CompareOp {
    Eq,
    Ne,
    Co,
    Sw,
    Ew,
    Gt,
    Ge,
    Lt,
    Le,
}

#[derive(Clone, Debug, PartialEq)]
pub enum Filter {
    And(Box<Filter>, Box<Filter>),
    Or(Box<Filter>, Box<Filter>),
    Not(Box<Filter>),
    Present(AttrPath),
    Compare(AttrPath, CompareOp, Value),
    /// `emails[type eq "work" and value co "@acme"]`: the inner filter applies to one element.
    ValuePath(AttrPath, Box<Filter>),
}

/// What a filter may name, and how: a column of the resource's table, or an element of a
/// multi-valued attribute kept as a JSON array.
#[derive(Clone, Copy, Debug)]
pub enum Column {
    /// A text column compared without regard to case (SCIM `caseExact: false`).
    Text(&'static str),
    /// A text column compared exactly (`caseExact: true`, e.g. `externalId`, `id`).
    ExactText(&'static str),
    Bool(&'static str),
    Timestamp(&'static str),
    /// A JSON array column whose elements are objects; the filter names one of their keys.
    JsonArray {
        column: &'static str,
        key: &'static str,
    },
    /// Group membership: the directory user ids of members.
    Members,
}

/// Maps an attribute path to a column; `None` for attributes the filter cannot use.
pub type ColumnMap = fn(&AttrPath) -> Option<Column>;

/// Errors a filter can raise while being translated (the SCIM layer answers `invalidFilter`).
#[derive(Debug, PartialEq)]
pub struct FilterError(pub String);

/// Appends the SQL of `filter` to `builder` (table alias `r`).
pub fn push_sql(
    builder: &mut sqlx::QueryBuilder<'_, sqlx::Postgres>,
    filter: &Filter,
    columns: ColumnMap,
) -> Result<(), FilterError> {
    match filter {
        Filter::And(a, b) | Filter::Or(a, b) => {
            builder.push("(");
            push_sql(builder, a, columns)?;
            builder.push(if matches!(filter, Filter::And(..)) { " and " } else { " or " });
            push_sql(builder, b, columns)?;
            builder.push(")");
        }
        Filter::Not(inner) => {
            builder.push("not coalesce((");
            push_sql(builder, inner, columns)?;
            builder.push("), false)");
        }
        Filter::Present(path) => match column(path, columns)? {
            Column::Text(c) | Column::ExactText(c) => {
                builder.push(format!("(r.{c} is not null and r.{c} <> '')"));
            }
            Column::Bool(c) | Column::Timestamp(c) => {
                builder.push(format!("(r.{c} is not null)"));
            }
            Column::JsonArray { column, key } => {
                builder.push(format!(
                    "exists (select 1 from jsonb_array_elements(r.{column}) e where coalesce(e->>'{key}', '') <> '')"
                ));
            }
            Column::Members => {
                builder.push("exists (select 1 from group_members m where m.org_id = r.org_id and m.group_id = r.id)");
            }
        },
        Filter::Compare(path, op, value) => {
            let col = column(path, columns)?;
            push_compare(builder, col, *op, value, path)?;
        }
        Filter::ValuePath(path, inner) => {
            let Some(Column::JsonArray { column, .. }) = column_of_array(path, columns) else {
                return Err(FilterError(format!("{} cannot be filtered with [ ]", path.attr)));
            };
            builder.push(format!("exists (select 1 from jsonb_array_elements(r.{column}) e where "));
            push_element_sql(builder, inner)?;
            builder.push(")");
        }
    }
    Ok(())
}

fn column(path: &AttrPath, columns: ColumnMap) -> Result<Column, FilterError> {
    columns(path).ok_or_else(|| FilterError(format!("filtering on {} is not supported", display(path))))
}

fn column_of_array(path: &AttrPath, columns: ColumnMap) -> Option<Column> {
    // `emails[...]` names the array; look it up through any of its keys.
    let probe = AttrPath { uri: path.uri.clone(), attr: path.attr.clone(), sub: Some("value".into()) };
    columns(&probe)
}

fn display(path: &AttrPath) -> String {
    match &path.sub {
        Some(sub) => format!("{}.{}", path.attr, sub),
        None => path.attr.clone(),
    }
}

/// Inside `attr[ ... ]`: sub-attributes of one JSON element `e`.
fn push_element_sql(builder: &mut sqlx::QueryBuilder<'_, sqlx::Postgres>, filter: &Filter) -> Result<(), FilterError> {
    match filter {
        Filter::And(a, b) | Filter::Or(a, b) => {
            builder.push("(");
            push_element_sql(builder, a)?;
            builder.push(if matches!(filter, Filter::And(..)) { " and " } else { " or " });
            push_element_sql(builder, b)?;
            builder.push(")");
        }
        Filter::Not(inner) => {
            builder.push("not coalesce((");
            push_element_sql(builder, inner)?;
            builder.push("), false)");
        }
        Filter::Present(path) => {
            builder.push("coalesce(e->>");
            builder.push_bind(path.attr.clone());
            builder.push(", '') <> ''");
        }
        Filter::Compare(path, op, value) => {
            if path.sub.is_some() {
                return Err(FilterError("a filter inside [ ] names sub-attributes directly".into()));
            }
            // Element keys: `primary` is boolean, everything else text compared without case.
            let key = path.attr.clone();
            if key.eq_ignore_ascii_case("primary") {
                let Value::Bool(flag) = value else {
                    return Err(FilterError("primary compares with true or false".into()));
                };
                if !matches!(op, CompareOp::Eq | CompareOp::Ne) {
                    return Err(FilterError("primary supports eq and ne only".into()));
                }
                builder.push("coalesce((e->>'primary')::boolean, false) ");
                builder.push(if *op == CompareOp::Eq { "= " } else { "<> " });
                builder.push_bind(*flag);
            } else {
                builder.push("lower(e->>");
                builder.push_bind(key.clone());
                builder.push(")");
                push_text_op(builder, *op, value, &key)?;
            }
        }
        Filter::ValuePath(..) => return Err(FilterError("[ ] cannot nest".into())),
    }
    Ok(())
}

fn text_value<'v>(value: &'v Value, attr: &str) -> Result<&'v str, FilterError> {
    value.as_str().ok_or_else(|| FilterError(format!("{attr} compares with a string in double quotes")))
}

fn like_escape(input: &str) -> String {
    input.replace('\\', "\\\\").replace('%', "\\%").replace('_', "\\_")
}

/// `<lhs> op $value` for a case-insensitive text left-hand side already pushed.
fn push_text_op(
    builder: &mut sqlx::QueryBuilder<'_, sqlx::Postgres>,
    op: CompareOp,
    value: &Value,
    attr: &str,
) -> Result<(), FilterError> {
    push_op(builder, op, text_value(value, attr)?.to_lowercase());
    Ok(())
}

/// ` op $text`, with LIKE patterns (escaped) for `co`, `sw` and `ew`.
fn push_op(builder: &mut sqlx::QueryBuilder<'_, sqlx::Postgres>, op: CompareOp, text: String) {
    match op {
        CompareOp::Eq => builder.push(" = ").push_bind(text),
        CompareOp::Ne => builder.push(" is distinct from ").push_bind(text),
        CompareOp::Co => builder.push(" like ").push_bind(format!("%{}%", like_escape(&text))),
        CompareOp::Sw => builder.push(" like ").push_bind(format!("{}%", like_escape(&text))),
        CompareOp::Ew => builder.push(" like ").push_bind(format!("%{}", like_escape(&text))),
        CompareOp::Gt => builder.push(" > ").push_bind(text),
        CompareOp::Ge => builder.push(" >= ").push_bind(text),
        CompareOp::Lt => builder.push(" < ").push_bind(text),
        CompareOp::Le => builder.push(" <= ").push_bind(text),
    };
}

fn push_compare(
    builder: &mut sqlx::QueryBuilder<'_, sqlx::Postgres>,
    column: Column,
    op: CompareOp,
    value: &Value,
    path: &AttrPath,
) -> Result<(), FilterError> {
    let name = display(path);
    match column {
        Column::Text(c) => {
            builder.push(format!("lower(r.{c})"));
            push_text_op(builder, op, value, &name)?;
        }
        Column::ExactText(c) => {
            let text = text_value(value, &name)?.to_string();
            builder.push(format!("r.{c}::text"));
            push_op(builder, op, text);
        }
        Column::Bool(c) => {
            let Value::Bool(flag) = value else {
                return Err(FilterError(format!("{name} compares with true or false")));
            };
            builder.push(format!("r.{c}"));
            match op {
                CompareOp::Eq => builder.push(" = ").push_bind(*flag),
                CompareOp::Ne => builder.push(" <> ").push_bind(*flag),
                _ => return Err(FilterError(format!("{name} supports eq and ne only"))),
            };
        }
        Column::Timestamp(c) => {
            let text = text_value(value, &name)?;
            let at = time::OffsetDateTime::parse(text, &time::format_description::well_known::Rfc3339)
                .map_err(|_| FilterError(format!("{name} compares with an RFC 3339 date-time")))?;
            builder.push(format!("r.{c}"));
            match op {
                CompareOp::Eq => builder.push(" = ").push_bind(at),
                CompareOp::Ne => builder.push(" <> ").push_bind(at),
                CompareOp::Gt => builder.push(" > ").push_bind(at),
                CompareOp::Ge => builder.push(" >= ").push_bind(at),
                CompareOp::Lt => builder.push(" < ").push_bind(at),
                CompareOp::Le => builder.push(" <= ").push_bind(at),
                _ => return Err(FilterError(format!("{name} does not support co, sw or ew"))),
            };
        }
        Column::JsonArray { column, key } => {
            builder.push(format!("exists (select 1 from jsonb_array_elements(r.{column}) e where lower(e->>'{key}')"));
            push_text_op(builder, op, value, &name)?;
            builder.push(")");
        }
        Column::Members => {
            let text = text_value(value, &name)?.to_string();
            if op != CompareOp::Eq {
                return Err(FilterError("members.value supports eq only".into()));
            }
            builder.push(
                "exists (select 1 from group_members m join directory_users du on du.org_id = m.org_id and du.person_id = m.person_id \
                 and du.directory_id = r.directory_id where m.org_id = r.org_id and m.group_id = r.id and du.id::text = ",
            );
            builder.push_bind(text);
            builder.push(")");
        }
    }
    Ok(())
}
