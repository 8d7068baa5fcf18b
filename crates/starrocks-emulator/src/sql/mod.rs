//! The SQL subset behind the MySQL protocol (spec §6).

mod alter;
mod ddl;
mod eval;
mod exec;
mod lexer;
mod meta;
mod parser;

pub use exec::{
    execute, format_time, QueryOutput, ResultColumn, Session, MYSQL_SERVER_VERSION,
    STARROCKS_VERSION,
};
pub use parser::{parse, Statement};
