//! Commands on links and DAGs, served by the index: import/export CAR files and link queries.

use std::path::Path;
use std::process::ExitCode;

use anyhow::Context;
use seedbank::index::{car, Index};
use seedbank::Cid;

use super::parse_cid;

/// `import FILE.car`: streams the file into the store; a corrupt file stops with an error
/// naming the byte offset (blocks verified before it stay stored) and exits non-zero.
pub async fn import(index: &Index, file: &Path) -> anyhow::Result<ExitCode> {
    let reader = tokio::fs::File::open(file)
        .await
        .with_context(|| format!("cannot open {}", file.display()))?;
    let report = car::import(index, tokio::io::BufReader::new(reader), Default::default())
        .await
        .with_context(|| format!("import of {} failed", file.display()))?;
    println!("version   CARv{}", report.version);
    println!("blocks    {}", report.blocks);
    println!("bytes     {}", report.bytes);
    for root in &report.roots {
        println!("root      {root}");
    }
    let bound = if report.missing_complete {
        ""
    } else {
        " (at least)"
    };
    println!("missing   {}{bound}", report.missing);
    Ok(ExitCode::SUCCESS)
}

/// `export ROOT FILE.car`: writes a CARv1 of every stored block of the DAG under ROOT.
pub async fn export(index: &Index, root: &str, file: &Path) -> anyhow::Result<ExitCode> {
    let root = parse_cid(root)?;
    let out = tokio::fs::File::create(file)
        .await
        .with_context(|| format!("cannot create {}", file.display()))?;
    let mut out = tokio::io::BufWriter::new(out);
    let report = car::export_dag(index, &root, &mut out).await?;
    tokio::io::AsyncWriteExt::flush(&mut out).await?;
    println!("blocks    {}", report.blocks);
    println!(
        "bytes     {} ({} in the CAR)",
        report.bytes, report.car_bytes
    );
    println!("missing   {}", report.missing);
    Ok(ExitCode::SUCCESS)
}

/// `links CID`: the CIDs a blob links to, in order.
pub async fn links(index: &Index, cid: &str) -> anyhow::Result<ExitCode> {
    let cid = parse_cid(cid)?;
    let links = index
        .links(&cid)
        .await?
        .with_context(|| format!("{cid} is not indexed"))?;
    print_cids(&links);
    Ok(ExitCode::SUCCESS)
}

/// `backlinks CID`: the stored blobs that link to CID.
pub async fn backlinks(index: &Index, cid: &str) -> anyhow::Result<ExitCode> {
    print_cids(&index.backlinks(&parse_cid(cid)?).await?);
    Ok(ExitCode::SUCCESS)
}

/// `missing ROOT`: blobs referenced under ROOT that are not stored; exits 1 if any.
pub async fn missing(index: &Index, root: &str) -> anyhow::Result<ExitCode> {
    let missing = index.missing(&parse_cid(root)?).await?;
    print_cids(&missing);
    Ok(if missing.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

/// `info CID`: metadata and link count, from the metadata-only pool.
pub async fn info(index: &Index, cid: &str) -> anyhow::Result<ExitCode> {
    let cid = parse_cid(cid)?;
    let info = index
        .info(&cid)
        .await?
        .with_context(|| format!("{cid} not found"))?;
    let at = info
        .blob
        .inserted_at
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    println!("cid          {}", info.blob.cid);
    println!("size         {}", info.blob.size);
    println!("codec        0x{:x}", info.blob.codec);
    println!("inserted_at  {} (unix ms)", at.as_millis());
    if info.indexed {
        println!("links        {}", info.links);
        println!(
            "indexable    {}",
            if info.indexable {
                "yes"
            } else {
                "no (kept as bytes)"
            }
        );
    } else {
        println!("links        unknown (stored without the index)");
    }
    if let Some(links) = index.links(&cid).await? {
        for link in links {
            println!("  -> {link}");
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn print_cids(cids: &[Cid]) {
    for cid in cids {
        println!("{cid}");
    }
}
