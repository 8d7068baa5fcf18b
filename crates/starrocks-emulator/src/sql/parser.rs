//! A recursive-descent parser for the SQL subset a CDC tool and its tests send (spec §6).

use crate::catalog::{Column, SqlError, TableSchema};
use crate::sql::lexer::{tokenize, Token};
pub use crate::sql::show::ShowFilter;

/// A literal.
#[derive(Debug, Clone, PartialEq)]
pub enum Lit {
    /// NULL.
    Null,
    /// TRUE / FALSE.
    Bool(bool),
    /// A number.
    Num(String),
    /// A string.
    Str(String),
}

/// An expression.
#[derive(Debug, Clone, PartialEq)]
pub enum Expr {
    /// A column reference (qualifier dropped).
    Column(String),
    /// A literal.
    Lit(Lit),
    /// `@@var`.
    SysVar(String),
    /// A function call; `star` for `COUNT(*)`.
    Func {
        /// Lower-cased name.
        name: String,
        /// Arguments.
        args: Vec<Expr>,
        /// `f(*)`.
        star: bool,
        /// `f(DISTINCT ...)`.
        distinct: bool,
    },
    /// Binary operator (`=`, `<`, `and`, `or`, `+`, ...).
    Binary {
        /// Operator text (lower-case for words).
        op: String,
        /// Left side.
        left: Box<Expr>,
        /// Right side.
        right: Box<Expr>,
    },
    /// NOT e.
    Not(Box<Expr>),
    /// -e.
    Neg(Box<Expr>),
    /// e IS [NOT] NULL.
    IsNull(Box<Expr>, bool),
    /// e [NOT] IN (list).
    InList(Box<Expr>, Vec<Expr>, bool),
    /// e [NOT] BETWEEN a AND b.
    Between(Box<Expr>, Box<Expr>, Box<Expr>, bool),
    /// e [NOT] LIKE pattern.
    Like(Box<Expr>, Box<Expr>, bool),
}

/// One item of a SELECT list.
#[derive(Debug, Clone, PartialEq)]
pub enum SelectItem {
    /// `*`.
    Star,
    /// An expression with an optional alias.
    Expr(Expr, Option<String>),
}

/// A SELECT statement.
#[derive(Debug, Clone, PartialEq)]
pub struct Select {
    /// `SELECT DISTINCT`.
    pub distinct: bool,
    /// The select list.
    pub items: Vec<SelectItem>,
    /// `FROM [db.]table`.
    pub from: Option<(Option<String>, String)>,
    /// WHERE.
    pub filter: Option<Expr>,
    /// ORDER BY (expr, descending).
    pub order: Vec<(Expr, bool)>,
    /// LIMIT.
    pub limit: Option<u64>,
    /// OFFSET.
    pub offset: u64,
}

/// Where ADD COLUMN puts the column.
#[derive(Debug, Clone, PartialEq)]
pub enum Position {
    /// At the end.
    Last,
    /// FIRST.
    First,
    /// AFTER c.
    After(String),
}

/// ALTER TABLE actions.
#[derive(Debug, Clone, PartialEq)]
pub enum AlterAction {
    /// ADD COLUMN (one or several).
    Add(Vec<(Column, bool, Position)>),
    /// DROP COLUMN.
    Drop(String),
    /// MODIFY COLUMN.
    Modify(Column),
    /// RENAME COLUMN old TO new (synchronous, spec §6.3a).
    RenameColumn {
        /// The current name.
        old: String,
        /// The new name.
        new: String,
    },
}

/// A parsed statement.
#[derive(Debug, Clone, PartialEq)]
pub enum Statement {
    /// CREATE DATABASE.
    CreateDatabase(String, bool),
    /// DROP DATABASE.
    DropDatabase(String, bool),
    /// USE db.
    Use(String),
    /// CREATE TABLE; the bool is IF NOT EXISTS; `explicit_null_keys` lists keys declared NULL.
    CreateTable {
        /// Database qualifier.
        db: Option<String>,
        /// Schema.
        schema: TableSchema,
        /// IF NOT EXISTS.
        if_not_exists: bool,
    },
    /// DROP TABLE.
    DropTable(Option<String>, String, bool),
    /// TRUNCATE TABLE.
    Truncate(Option<String>, String),
    /// ALTER TABLE.
    Alter(Option<String>, String, AlterAction),
    /// DESC.
    Desc(Option<String>, String),
    /// SHOW [FULL] COLUMNS FROM t [FROM db] [LIKE | WHERE].
    ShowColumns {
        /// Database qualifier.
        db: Option<String>,
        /// Table.
        table: String,
        /// FULL.
        full: bool,
        /// Filter.
        filter: ShowFilter,
    },
    /// SHOW DATABASES [LIKE | WHERE].
    ShowDatabases(ShowFilter),
    /// SHOW [FULL] TABLES [FROM db] [LIKE | WHERE].
    ShowTables {
        /// Database.
        db: Option<String>,
        /// FULL: adds `Table_type`.
        full: bool,
        /// Filter.
        filter: ShowFilter,
    },
    /// SHOW CREATE TABLE.
    ShowCreateTable(Option<String>, String),
    /// SHOW ALTER TABLE COLUMN [FROM db] [WHERE] [ORDER BY] [LIMIT].
    ShowAlter(Option<String>, Select),
    /// SHOW VARIABLES / other SHOWs answered with an empty set.
    ShowEmpty(Vec<String>),
    /// SELECT.
    Select(Select),
    /// INSERT INTO t [(cols)] VALUES (...), ...
    Insert {
        /// Database qualifier.
        db: Option<String>,
        /// Table.
        table: String,
        /// Column list.
        columns: Option<Vec<String>>,
        /// Rows of expressions.
        rows: Vec<Vec<Expr>>,
    },
    /// DELETE FROM [db.]t [WHERE expr].
    Delete {
        /// Database qualifier.
        db: Option<String>,
        /// Table.
        table: String,
        /// WHERE.
        filter: Option<Expr>,
    },
    /// `ADMIN SET FRONTEND CONFIG ('key' = 'value')`.
    SetFrontendConfig(String, String),
    /// Statements acknowledged with OK and no effect (SET, BEGIN, COMMIT, ...).
    Noop,
}

/// Parse one expression (the Stream Load `where` header).
pub fn parse_expr(text: &str) -> Result<Expr, SqlError> {
    let tokens = tokenize(text)?;
    let mut p = Parser { tokens, pos: 0 };
    let expr = p.expr()?;
    if p.pos < p.tokens.len() {
        return Err(p.error());
    }
    Ok(expr)
}

/// Parse one statement (a trailing `;` is allowed).
pub fn parse(sql: &str) -> Result<Statement, SqlError> {
    let tokens = tokenize(sql)?;
    let mut p = Parser { tokens, pos: 0 };
    let stmt = p.statement()?;
    while p.eat_sym(";") {}
    if p.pos < p.tokens.len() {
        return Err(p.error());
    }
    Ok(stmt)
}

pub(super) struct Parser {
    pub(super) tokens: Vec<Token>,
    pub(super) pos: usize,
}

impl Parser {
    pub(super) fn error(&self) -> SqlError {
        self.error_expecting("<EOF>")
    }

    /// A syntax error naming what the grammar wanted, as ANTLR's "most similar input".
    pub(super) fn error_expecting(&self, expected: &str) -> SqlError {
        let near = match self.tokens.get(self.pos) {
            None => "end of input".to_string(),
            Some(Token::Ident { text, .. }) => text.clone(),
            Some(Token::Str(s)) => format!("'{s}'"),
            Some(Token::Number(n)) => n.clone(),
            Some(Token::SysVar(v)) => format!("@@{v}"),
            Some(Token::Sym(s)) => s.to_string(),
        };
        SqlError::new(format!(
            "Getting syntax error at line 1, column {}. Detail message: Unexpected input '{near}', the most similar input is {{{expected}}}.",
            self.pos
        ))
    }

    pub(super) fn peek(&self) -> Option<&Token> {
        self.tokens.get(self.pos)
    }

    pub(super) fn peek_kw(&self, kw: &str) -> bool {
        self.peek().is_some_and(|t| t.is_kw(kw))
    }

    pub(super) fn eat_kw(&mut self, kw: &str) -> bool {
        if self.peek_kw(kw) {
            self.pos += 1;
            true
        } else {
            false
        }
    }

    pub(super) fn expect_kw(&mut self, kw: &str) -> Result<(), SqlError> {
        if self.eat_kw(kw) {
            Ok(())
        } else {
            Err(self.error())
        }
    }

    pub(super) fn eat_sym(&mut self, sym: &str) -> bool {
        if matches!(self.peek(), Some(Token::Sym(s)) if *s == sym) {
            self.pos += 1;
            true
        } else {
            false
        }
    }

    pub(super) fn expect_sym(&mut self, sym: &str) -> Result<(), SqlError> {
        if self.eat_sym(sym) {
            Ok(())
        } else {
            Err(self.error())
        }
    }

    pub(super) fn ident(&mut self) -> Result<String, SqlError> {
        match self.peek() {
            Some(Token::Ident { text, .. }) => {
                let text = text.clone();
                self.pos += 1;
                Ok(text)
            }
            _ => Err(self.error()),
        }
    }

    pub(super) fn string_or_ident(&mut self) -> Result<String, SqlError> {
        match self.peek() {
            Some(Token::Str(s)) => {
                let s = s.clone();
                self.pos += 1;
                Ok(s)
            }
            _ => self.ident(),
        }
    }

    fn if_exists(&mut self) -> Result<bool, SqlError> {
        if self.eat_kw("if") {
            self.expect_kw("exists")?;
            return Ok(true);
        }
        Ok(false)
    }

    pub(super) fn if_not_exists(&mut self) -> Result<bool, SqlError> {
        if self.eat_kw("if") {
            self.expect_kw("not")?;
            self.expect_kw("exists")?;
            return Ok(true);
        }
        Ok(false)
    }

    /// `[db.]name`.
    pub(super) fn qualified(&mut self) -> Result<(Option<String>, String), SqlError> {
        let first = self.ident()?;
        if self.eat_sym(".") {
            let second = self.ident()?;
            return Ok((Some(first), second));
        }
        Ok((None, first))
    }

    pub(super) fn skip_rest(&mut self) {
        self.pos = self.tokens.len();
    }

    fn statement(&mut self) -> Result<Statement, SqlError> {
        let Some(first) = self.peek().cloned() else {
            return Err(SqlError::with_code(1065, "Query was empty"));
        };
        if first.is_kw("select") || matches!(first, Token::Sym("(")) {
            return Ok(Statement::Select(self.select()?));
        }
        if first.is_kw("create") {
            self.pos += 1;
            if self.eat_kw("database") || self.eat_kw("schema") {
                let ine = self.if_not_exists()?;
                let name = self.ident()?;
                self.skip_rest();
                return Ok(Statement::CreateDatabase(name, ine));
            }
            if self.eat_kw("table") {
                return self.create_table();
            }
            return Err(self.error());
        }
        if first.is_kw("drop") {
            self.pos += 1;
            if self.eat_kw("database") || self.eat_kw("schema") {
                let ie = self.if_exists()?;
                let name = self.ident()?;
                self.eat_kw("force");
                return Ok(Statement::DropDatabase(name, ie));
            }
            if self.eat_kw("table") {
                let ie = self.if_exists()?;
                let (db, table) = self.qualified()?;
                self.eat_kw("force");
                return Ok(Statement::DropTable(db, table, ie));
            }
            return Err(self.error());
        }
        if first.is_kw("use") {
            self.pos += 1;
            let name = self.ident()?;
            return Ok(Statement::Use(name));
        }
        if first.is_kw("truncate") {
            self.pos += 1;
            self.eat_kw("table");
            let (db, table) = self.qualified()?;
            return Ok(Statement::Truncate(db, table));
        }
        if first.is_kw("alter") {
            self.pos += 1;
            self.expect_kw("table")?;
            let (db, table) = self.qualified()?;
            self.check_alter_conflicts()?;
            let action = self.alter_action()?;
            return Ok(Statement::Alter(db, table, action));
        }
        if first.is_kw("desc") || first.is_kw("describe") {
            self.pos += 1;
            let (db, table) = self.qualified()?;
            self.skip_rest();
            return Ok(Statement::Desc(db, table));
        }
        if first.is_kw("show") {
            self.pos += 1;
            return self.show();
        }
        if first.is_kw("delete") {
            self.pos += 1;
            self.expect_kw("from")?;
            let (db, table) = self.qualified()?;
            let filter = if self.eat_kw("where") {
                Some(self.expr()?)
            } else {
                None
            };
            return Ok(Statement::Delete { db, table, filter });
        }
        if first.is_kw("insert") {
            self.pos += 1;
            return self.insert();
        }
        if first.is_kw("admin") {
            self.pos += 1;
            if self.eat_kw("set") && self.eat_kw("frontend") && self.eat_kw("config") {
                self.expect_sym("(")?;
                let key = self.string_or_ident()?;
                self.expect_sym("=")?;
                let value = match self.peek().cloned() {
                    Some(Token::Number(n)) => {
                        self.pos += 1;
                        n
                    }
                    _ => self.string_or_ident()?,
                };
                self.expect_sym(")")?;
                return Ok(Statement::SetFrontendConfig(key, value));
            }
            self.skip_rest();
            return Ok(Statement::Noop);
        }
        if [
            "set", "begin", "commit", "rollback", "start", "kill", "analyze",
        ]
        .iter()
        .any(|kw| first.is_kw(kw))
        {
            self.skip_rest();
            return Ok(Statement::Noop);
        }
        Err(self.error())
    }

    /// `[LIKE 'pattern' | WHERE expr]` after a SHOW.
    fn show_filter(&mut self) -> Result<ShowFilter, SqlError> {
        if self.eat_kw("like") {
            return match self.peek().cloned() {
                Some(Token::Str(pattern)) => {
                    self.pos += 1;
                    Ok(ShowFilter::Like(pattern))
                }
                _ => Err(self.error()),
            };
        }
        if self.eat_kw("where") {
            return Ok(ShowFilter::Where(self.expr()?));
        }
        Ok(ShowFilter::None)
    }

    fn show(&mut self) -> Result<Statement, SqlError> {
        if self.eat_kw("databases") || self.eat_kw("schemas") {
            return Ok(Statement::ShowDatabases(self.show_filter()?));
        }
        let full = self.eat_kw("full");
        if self.eat_kw("tables") {
            let db = if self.eat_kw("from") || self.eat_kw("in") {
                Some(self.ident()?)
            } else {
                None
            };
            let filter = self.show_filter()?;
            return Ok(Statement::ShowTables { db, full, filter });
        }
        if self.eat_kw("columns") || self.eat_kw("fields") {
            if !(self.eat_kw("from") || self.eat_kw("in")) {
                return Err(self.error());
            }
            let (mut db, table) = self.qualified()?;
            if self.eat_kw("from") || self.eat_kw("in") {
                db = Some(self.ident()?);
            }
            let filter = self.show_filter()?;
            return Ok(Statement::ShowColumns {
                db,
                table,
                full,
                filter,
            });
        }
        if self.eat_kw("create") {
            self.expect_kw("table")?;
            let (db, table) = self.qualified()?;
            return Ok(Statement::ShowCreateTable(db, table));
        }
        if self.eat_kw("alter") {
            self.expect_kw("table")?;
            self.expect_kw("column")?;
            let db = if self.eat_kw("from") || self.eat_kw("in") {
                Some(self.ident()?)
            } else {
                None
            };
            let mut select = Select {
                distinct: false,
                items: vec![SelectItem::Star],
                from: None,
                filter: None,
                order: Vec::new(),
                limit: None,
                offset: 0,
            };
            self.select_tail(&mut select)?;
            return Ok(Statement::ShowAlter(db, select));
        }
        if self.eat_kw("variables") || self.eat_kw("status") || self.eat_kw("warnings") {
            self.skip_rest();
            return Ok(Statement::ShowEmpty(vec![
                "Variable_name".into(),
                "Value".into(),
            ]));
        }
        self.skip_rest();
        Ok(Statement::ShowEmpty(vec!["Value".into()]))
    }

    fn insert(&mut self) -> Result<Statement, SqlError> {
        self.expect_kw("into")?;
        let (db, table) = self.qualified()?;
        let columns = if self.eat_sym("(") {
            let mut names = vec![self.ident()?];
            while self.eat_sym(",") {
                names.push(self.ident()?);
            }
            self.expect_sym(")")?;
            Some(names)
        } else {
            None
        };
        if !(self.eat_kw("values") || self.eat_kw("value")) {
            return Err(self.error());
        }
        let mut rows = Vec::new();
        loop {
            self.expect_sym("(")?;
            let mut row = vec![self.expr()?];
            while self.eat_sym(",") {
                row.push(self.expr()?);
            }
            self.expect_sym(")")?;
            rows.push(row);
            if !self.eat_sym(",") {
                break;
            }
        }
        Ok(Statement::Insert {
            db,
            table,
            columns,
            rows,
        })
    }

    fn select(&mut self) -> Result<Select, SqlError> {
        if self.eat_sym("(") {
            let inner = self.select()?;
            self.expect_sym(")")?;
            return Ok(inner);
        }
        self.expect_kw("select")?;
        let distinct = self.eat_kw("distinct");
        let mut items = Vec::new();
        loop {
            if self.eat_sym("*") {
                items.push(SelectItem::Star);
            } else {
                let expr = self.expr()?;
                let alias = if self.eat_kw("as") {
                    Some(self.string_or_ident()?)
                } else {
                    match self.peek() {
                        Some(Token::Ident { text, quoted }) if *quoted || !is_reserved(text) => {
                            let a = text.clone();
                            self.pos += 1;
                            Some(a)
                        }
                        Some(Token::Str(s)) => {
                            let a = s.clone();
                            self.pos += 1;
                            Some(a)
                        }
                        _ => None,
                    }
                };
                items.push(SelectItem::Expr(expr, alias));
            }
            if !self.eat_sym(",") {
                break;
            }
        }
        let from = if self.eat_kw("from") {
            Some(self.qualified()?)
        } else {
            None
        };
        let mut select = Select {
            distinct,
            items,
            from,
            filter: None,
            order: Vec::new(),
            limit: None,
            offset: 0,
        };
        self.select_tail(&mut select)?;
        Ok(select)
    }

    fn select_tail(&mut self, select: &mut Select) -> Result<(), SqlError> {
        if self.eat_kw("where") {
            select.filter = Some(self.expr()?);
        }
        if self.eat_kw("order") {
            self.expect_kw("by")?;
            loop {
                let expr = self.expr()?;
                let desc = if self.eat_kw("desc") {
                    true
                } else {
                    self.eat_kw("asc");
                    false
                };
                select.order.push((expr, desc));
                if !self.eat_sym(",") {
                    break;
                }
            }
        }
        if self.eat_kw("limit") {
            let first = u64::from(self.number()?);
            if self.eat_sym(",") {
                select.offset = first;
                select.limit = Some(u64::from(self.number()?));
            } else {
                select.limit = Some(first);
                if self.eat_kw("offset") {
                    select.offset = u64::from(self.number()?);
                }
            }
        }
        Ok(())
    }

    fn expr(&mut self) -> Result<Expr, SqlError> {
        let mut left = self.and_expr()?;
        while self.eat_kw("or") || self.eat_sym("||") {
            let right = self.and_expr()?;
            left = binary("or", left, right);
        }
        Ok(left)
    }

    fn and_expr(&mut self) -> Result<Expr, SqlError> {
        let mut left = self.not_expr()?;
        while self.eat_kw("and") {
            let right = self.not_expr()?;
            left = binary("and", left, right);
        }
        Ok(left)
    }

    fn not_expr(&mut self) -> Result<Expr, SqlError> {
        if self.eat_kw("not") {
            return Ok(Expr::Not(Box::new(self.not_expr()?)));
        }
        self.comparison()
    }

    fn comparison(&mut self) -> Result<Expr, SqlError> {
        let left = self.additive()?;
        for op in ["<=", ">=", "!=", "<>", "=", "<", ">"] {
            if self.eat_sym(op) {
                let right = self.additive()?;
                let op = if op == "<>" { "!=" } else { op };
                return Ok(binary(op, left, right));
            }
        }
        if self.eat_kw("is") {
            let negated = self.eat_kw("not");
            self.expect_kw("null")?;
            return Ok(Expr::IsNull(Box::new(left), negated));
        }
        let negated = self.eat_kw("not");
        if self.eat_kw("in") {
            self.expect_sym("(")?;
            let mut list = vec![self.expr()?];
            while self.eat_sym(",") {
                list.push(self.expr()?);
            }
            self.expect_sym(")")?;
            return Ok(Expr::InList(Box::new(left), list, negated));
        }
        if self.eat_kw("between") {
            let low = self.additive()?;
            self.expect_kw("and")?;
            let high = self.additive()?;
            return Ok(Expr::Between(
                Box::new(left),
                Box::new(low),
                Box::new(high),
                negated,
            ));
        }
        if self.eat_kw("like") {
            let pattern = self.additive()?;
            return Ok(Expr::Like(Box::new(left), Box::new(pattern), negated));
        }
        if negated {
            return Err(self.error());
        }
        Ok(left)
    }

    fn additive(&mut self) -> Result<Expr, SqlError> {
        let mut left = self.multiplicative()?;
        loop {
            if self.eat_sym("+") {
                left = binary("+", left, self.multiplicative()?);
            } else if self.eat_sym("-") {
                left = binary("-", left, self.multiplicative()?);
            } else {
                return Ok(left);
            }
        }
    }

    fn multiplicative(&mut self) -> Result<Expr, SqlError> {
        let mut left = self.unary()?;
        loop {
            if self.eat_sym("*") {
                left = binary("*", left, self.unary()?);
            } else if self.eat_sym("/") {
                left = binary("/", left, self.unary()?);
            } else if self.eat_sym("%") {
                left = binary("%", left, self.unary()?);
            } else {
                return Ok(left);
            }
        }
    }

    fn unary(&mut self) -> Result<Expr, SqlError> {
        if self.eat_sym("-") {
            return Ok(Expr::Neg(Box::new(self.unary()?)));
        }
        self.eat_sym("+");
        self.primary()
    }

    fn primary(&mut self) -> Result<Expr, SqlError> {
        let Some(token) = self.peek().cloned() else {
            return Err(self.error());
        };
        self.pos += 1;
        match token {
            Token::Number(n) => Ok(Expr::Lit(Lit::Num(n))),
            Token::Str(s) => Ok(Expr::Lit(Lit::Str(s))),
            Token::SysVar(v) => Ok(Expr::SysVar(v.to_ascii_lowercase())),
            Token::Sym("(") => {
                let e = self.expr()?;
                self.expect_sym(")")?;
                Ok(e)
            }
            Token::Ident { text, quoted } => {
                if !quoted && is_reserved(&text) {
                    self.pos -= 1;
                    return Err(self.error());
                }
                if !quoted {
                    if text.eq_ignore_ascii_case("null") {
                        return Ok(Expr::Lit(Lit::Null));
                    }
                    if text.eq_ignore_ascii_case("true") {
                        return Ok(Expr::Lit(Lit::Bool(true)));
                    }
                    if text.eq_ignore_ascii_case("false") {
                        return Ok(Expr::Lit(Lit::Bool(false)));
                    }
                }
                if !quoted && self.eat_sym("(") {
                    let name = text.to_ascii_lowercase();
                    if self.eat_sym("*") {
                        self.expect_sym(")")?;
                        return Ok(Expr::Func {
                            name,
                            args: Vec::new(),
                            star: true,
                            distinct: false,
                        });
                    }
                    let mut args = Vec::new();
                    let mut distinct = false;
                    if !self.eat_sym(")") {
                        distinct = self.eat_kw("distinct");
                        args.push(self.expr()?);
                        while self.eat_sym(",") {
                            args.push(self.expr()?);
                        }
                        self.expect_sym(")")?;
                    }
                    return Ok(Expr::Func {
                        name,
                        args,
                        star: false,
                        distinct,
                    });
                }
                // Qualified names: keep the last part.
                let mut name = text;
                while self.eat_sym(".") {
                    name = self.ident()?;
                }
                Ok(Expr::Column(name))
            }
            _ => {
                self.pos -= 1;
                Err(self.error())
            }
        }
    }
}

fn binary(op: &str, left: Expr, right: Expr) -> Expr {
    Expr::Binary {
        op: op.to_string(),
        left: Box::new(left),
        right: Box::new(right),
    }
}

fn is_reserved(word: &str) -> bool {
    [
        "from", "where", "order", "limit", "group", "having", "as", "and", "or", "not", "union",
        "offset", "asc", "desc", "into", "join", "on",
    ]
    .iter()
    .any(|kw| kw.eq_ignore_ascii_case(word))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::types::ColumnType;

    #[test]
    fn parses_starrocks_create_table() {
        let sql = r#"CREATE TABLE IF NOT EXISTS db.t (
            id BIGINT NOT NULL COMMENT "pk",
            k2 VARCHAR(64) NOT NULL,
            v1 INT NULL DEFAULT "0",
            v2 DECIMAL(10, 2),
            v3 ARRAY<ARRAY<INT>>
        ) ENGINE=OLAP PRIMARY KEY (id, k2)
        COMMENT "OLAP"
        DISTRIBUTED BY HASH (id) BUCKETS 4
        PROPERTIES ("replication_num" = "1", "enable_persistent_index" = "true");"#;
        let Statement::CreateTable {
            db,
            schema,
            if_not_exists,
        } = parse(sql).unwrap()
        else {
            panic!("not a create table");
        };
        assert_eq!(db.as_deref(), Some("db"));
        assert!(if_not_exists);
        assert_eq!(schema.key_count, 2);
        assert_eq!(schema.columns[2].default.as_deref(), Some("0"));
        assert_eq!(schema.buckets, Some(4));
        assert_eq!(schema.properties.len(), 2);
        assert_eq!(
            schema.columns[4].ty,
            ColumnType::Array(Box::new(ColumnType::Array(Box::new(ColumnType::Int))))
        );
    }

    #[test]
    fn key_columns_must_be_an_ordered_prefix() {
        let err = parse("CREATE TABLE t (a INT, b INT) PRIMARY KEY (b) DISTRIBUTED BY HASH(b)")
            .unwrap_err();
        assert!(err.message.contains("ordered prefix"), "{err}");
    }

    #[test]
    fn parses_select_with_where_order_limit() {
        let Statement::Select(s) = parse(
            "select id, name from t where id >= 3 and name is not null order by id desc limit 5",
        )
        .unwrap() else {
            panic!()
        };
        assert_eq!(s.items.len(), 2);
        assert!(s.filter.is_some());
        assert_eq!(s.order.len(), 1);
        assert_eq!(s.limit, Some(5));
    }

    #[test]
    fn rename_column_needs_to_and_stands_alone() {
        let parsed = parse("ALTER TABLE db.t RENAME COLUMN `Old` TO new;").unwrap();
        let rename = AlterAction::RenameColumn {
            old: "Old".into(),
            new: "new".into(),
        };
        assert_eq!(
            parsed,
            Statement::Alter(Some("db".into()), "t".into(), rename)
        );
        let err = parse("ALTER TABLE t RENAME COLUMN a b").unwrap_err();
        assert!(
            err.message.ends_with("most similar input is {'TO'}."),
            "{err}"
        );
        assert!(parse("ALTER TABLE t RENAME COLUMN a TO b c").is_err());
        // Parentheses and strings do not split clauses.
        let err = parse("ALTER TABLE t ADD COLUMN (a DECIMAL(9,2), b INT), RENAME COLUMN c TO d")
            .unwrap_err();
        assert!(
            err.message
                .ends_with("Alter operation RENAME conflicts with operation SCHEMA_CHANGE."),
            "{err}"
        );
        assert!(parse("ALTER TABLE t ADD COLUMN a INT DEFAULT ',', DROP COLUMN b").is_ok());
    }

    #[test]
    fn bad_sql_is_an_error_not_a_panic() {
        for sql in [
            "",
            "selec",
            "select from",
            "create table (",
            "alter table t add",
            "'",
            "`x",
        ] {
            assert!(parse(sql).is_err(), "{sql}");
        }
    }
}
