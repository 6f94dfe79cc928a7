//! The throwaway cluster's life cycle: it starts, serves, and leaves nothing
//! behind whether it is stopped or dropped.

use std::net::TcpStream;

use pgward::cluster::TempCluster;

use crate::harness::connect;

#[tokio::test]
async fn stop_shuts_the_server_down_and_removes_the_folder() -> anyhow::Result<()> {
    let cluster = TempCluster::start().await?;
    assert!(cluster.bin_dir().join("postgres").is_file());
    cluster.create_database("made_here").await?;
    let client = connect(&cluster.superuser_url("made_here")).await?;
    let row = client
        .query_one(
            "SELECT current_database()::text, current_setting('fsync')",
            &[],
        )
        .await?;
    assert_eq!(row.get::<_, String>(0), "made_here");
    assert_eq!(row.get::<_, String>(1), "off");
    drop(client);

    let (dir, port) = (cluster.dir().to_path_buf(), cluster.port());
    cluster.stop().await?;
    assert!(!dir.exists(), "{} is left behind", dir.display());
    assert!(TcpStream::connect(("127.0.0.1", port)).is_err());
    Ok(())
}

#[tokio::test]
async fn drop_shuts_the_server_down_and_removes_the_folder() -> anyhow::Result<()> {
    let cluster = TempCluster::start().await?;
    // An open session must not hold the shutdown up.
    let _client = cluster.superuser_client("postgres").await?;
    let (dir, port) = (cluster.dir().to_path_buf(), cluster.port());
    drop(cluster);
    assert!(!dir.exists(), "{} is left behind", dir.display());
    assert!(TcpStream::connect(("127.0.0.1", port)).is_err());
    Ok(())
}

#[tokio::test]
async fn local_connections_need_a_password_over_tcp() -> anyhow::Result<()> {
    let cluster = crate::harness::cluster().await?;
    let wrong = format!(
        "host=127.0.0.1 port={} user=postgres password=wrong dbname=postgres",
        cluster.port()
    );
    assert!(connect(&wrong).await.is_err());
    Ok(())
}
