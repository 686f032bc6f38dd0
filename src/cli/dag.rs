//! Commands on links and DAGs, served by the index: import/export CAR files and link queries.

use std::path::Path;
use std::process::ExitCode;

use anyhow::Context;
use seedbank::control::{Input, Op, Reply};
use seedbank::index::{car, Index};
use seedbank::Cid;

use super::out::{self, outln};
use super::parse_cid;
use super::write::{with_target, Target};

/// `import FILE.car`: streams the file into the store (here, or on the node running on
/// `db`); a corrupt file stops with an error naming the byte offset (blocks verified before
/// it stay stored) and exits non-zero.
pub async fn import(db: &Path, file: &Path) -> anyhow::Result<ExitCode> {
    let target = Target::open(db).await?;
    let op = Op::Import {
        file: Input::from_arg(file),
    };
    with_target(target, |t| async move {
        let report = match t.run(op, None).await? {
            Reply::Imported(report) => report,
            other => return Err(super::write::unexpected(other)),
        };
        outln!("version   CARv{}", report.version)?;
        outln!("blocks    {}", report.blocks)?;
        outln!("bytes     {}", report.bytes)?;
        for root in &report.roots {
            outln!("root      {root}")?;
        }
        let bound = if report.missing_complete {
            ""
        } else {
            " (at least)"
        };
        outln!("missing   {}{bound}", report.missing)?;
        Ok(ExitCode::SUCCESS)
    })
    .await
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
    outln!("blocks    {}", report.blocks)?;
    outln!(
        "bytes     {} ({} in the CAR)",
        report.bytes,
        report.car_bytes
    )?;
    outln!("missing   {}", report.missing)?;
    Ok(ExitCode::SUCCESS)
}

/// `links CID`: the CIDs a blob links to, in order.
pub async fn links(index: &Index, cid: &str, json: bool) -> anyhow::Result<ExitCode> {
    let cid = parse_cid(cid)?;
    let links = index
        .links(&cid)
        .await?
        .with_context(|| format!("{cid} is not indexed"))?;
    print_cids(&links, json)?;
    Ok(ExitCode::SUCCESS)
}

/// `backlinks CID`: the stored blobs that link to CID.
pub async fn backlinks(index: &Index, cid: &str, json: bool) -> anyhow::Result<ExitCode> {
    print_cids(&index.backlinks(&parse_cid(cid)?).await?, json)?;
    Ok(ExitCode::SUCCESS)
}

/// `missing ROOT`: blobs referenced under ROOT that are not stored; exits 1 if any.
pub async fn missing(index: &Index, root: &str, json: bool) -> anyhow::Result<ExitCode> {
    let missing = index.missing(&parse_cid(root)?).await?;
    print_cids(&missing, json)?;
    Ok(out::verdict(missing.is_empty()))
}

/// `info CID`: metadata and links, from the metadata-only pool.
pub async fn info(index: &Index, cid: &str, json: bool) -> anyhow::Result<ExitCode> {
    let cid = parse_cid(cid)?;
    let info = index
        .info(&cid)
        .await?
        .with_context(|| format!("{cid} not found"))?;
    let links = index.links(&cid).await?;
    let inserted_at = out::time(info.blob.inserted_at);
    if json {
        out::json(&serde_json::json!({
            "cid": info.blob.cid.to_string(),
            "size": info.blob.size,
            "codec": info.blob.codec,
            "inserted_at": inserted_at,
            "indexed": info.indexed,
            "indexable": info.indexable,
            "links": links.map(|l| l.iter().map(Cid::to_string).collect::<Vec<_>>()),
        }))?;
        return Ok(ExitCode::SUCCESS);
    }
    outln!("cid          {}", info.blob.cid)?;
    outln!("size         {}", info.blob.size)?;
    outln!("codec        0x{:x}", info.blob.codec)?;
    outln!("inserted_at  {inserted_at}")?;
    if info.indexed {
        outln!("links        {}", info.links)?;
        let indexable = if info.indexable {
            "yes"
        } else {
            "no (kept as bytes)"
        };
        outln!("indexable    {indexable}")?;
    } else {
        outln!("links        unknown (stored without the index)")?;
    }
    for link in links.iter().flatten() {
        outln!("  -> {link}")?;
    }
    Ok(ExitCode::SUCCESS)
}

/// One CID a line, or a JSON array of strings.
fn print_cids(cids: &[Cid], json: bool) -> anyhow::Result<()> {
    if json {
        return out::json(&cids.iter().map(Cid::to_string).collect::<Vec<_>>());
    }
    for cid in cids {
        outln!("{cid}")?;
    }
    Ok(())
}
