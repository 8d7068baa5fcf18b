//! Column names as StarRocks takes them: backquoted identifiers (`` ` `` doubled inside) in
//! DDL and in the Stream Load `columns` header, which the FE parses as SQL.

use mysql_async::prelude::*;

use crate::mysql::connect;
use crate::support::Fixture;

#[tokio::test]
async fn ddl_takes_any_backquoted_name_check_column_name_allows() {
    let fx = Fixture::new().await;
    let mut conn = connect(&fx, "").await.unwrap();
    conn.query_drop("USE d").await.unwrap();
    conn.query_drop(
        "CREATE TABLE t (id INT NOT NULL, `a``b` INT NULL, `order` INT NULL, `x,y` INT NULL) \
         PRIMARY KEY (id) DISTRIBUTED BY HASH(id)",
    )
    .await
    .unwrap();
    assert_eq!(
        fx.emu.table_columns("d", "t").unwrap(),
        ["id", "a`b", "order", "x,y"]
    );
    for sql in [
        "CREATE TABLE u (id INT NOT NULL, `a=b` INT NULL) PRIMARY KEY (id) DISTRIBUTED BY HASH(id)",
        "ALTER TABLE t ADD COLUMN `x<y` INT NULL",
    ] {
        let name = if sql.contains("a=b") { "a=b" } else { "x<y" };
        match conn.query_drop(sql).await.unwrap_err() {
            mysql_async::Error::Server(e) => assert_eq!(
                (e.code, e.message.as_str()),
                (
                    1166,
                    format!(
                        "Getting analyzing error. Detail message: Incorrect column name '{name}'."
                    )
                    .as_str()
                ),
                "{sql}"
            ),
            other => panic!("{sql}: {other}"),
        }
    }
    assert!(fx.emu.table_columns("d", "u").is_err());
}

#[tokio::test]
async fn the_columns_header_is_sql_backquotes_and_reserved_words() {
    let fx = Fixture::new().await;
    fx.sql(
        "CREATE TABLE t (id INT NOT NULL, `order` INT NULL, `a,b` VARCHAR(8) NULL, \
         `we\"ird` VARCHAR(8) NULL, `x``y` INT NULL) PRIMARY KEY (id) DISTRIBUTED BY HASH(id)",
    )
    .await;
    let r = fx
        .load_json(
            "t",
            &[("columns", "id,`order`,`a,b`,`we\"ird`,`x``y`")],
            r#"[{"id":1,"order":2,"a,b":"c","we\"ird":"w","x`y":3}]"#,
        )
        .await;
    assert_eq!(r["Status"], "Success", "{r}");
    assert_eq!(fx.text_rows("t"), [["1", "2", "c", "w", "3"]]);

    let r = fx
        .load_json("t", &[("columns", "id,order")], r#"[{"id":2,"order":5}]"#)
        .await;
    assert_eq!(r["Status"], "Fail", "{r}");
    assert_eq!(
        r["Message"],
        "Getting syntax error at line 1, column 12. Detail message: Unexpected input 'order', \
         the most similar input is {a legal identifier}."
    );
    assert_eq!(fx.text_rows("t").len(), 1);
}
