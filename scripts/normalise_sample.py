"""Normalise the real price files in ../shared/datasets into data/sample/ (run once).

The product reads only data/sample/ at run time. This script records, for every output
file, where its input came from (PyPI package, path, licence), the SHA-256 of input and
output, the repairs it made, and the instrument metadata, in data/sample/manifest.json.

Usage: python scripts/normalise_sample.py [SOURCE_DIR]
"""

from __future__ import annotations

import hashlib
import json
import sys
from pathlib import Path

import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "data" / "sample"
ARCH = "arch 8.0.0 (PyPI), NCSA licence"
BT = "backtesting 0.6.6 (PyPI), AGPL-3.0 package"

# symbol -> (file, reader, shipped by, path in package, metadata)
OHLCV = {
    "SPX": ("sp500_daily.csv", "mdy", ARCH, "arch/data/sp500/sp500.csv.gz",
            dict(name="S&P 500 index", asset_class="INDEX", exchange="SAMPLE", currency="USD",
                 timeframe="1d", lot_size=1.0, tick_size=0.01, adjusted=False)),
    "IXIC": ("nasdaq_daily.csv", "mdy", ARCH, "arch/data/nasdaq/nasdaq.csv.gz",
             dict(name="NASDAQ Composite index", asset_class="INDEX", exchange="SAMPLE",
                  currency="USD", timeframe="1d", lot_size=1.0, tick_size=0.01, adjusted=False)),
    "GOOG": ("goog_daily.csv", "index", BT, "backtesting/test/GOOG.csv",
             dict(name="Google Inc. (GOOG), raw prices before the 2014 split", asset_class="EQUITY",
                  exchange="SAMPLE", currency="USD", timeframe="1d", lot_size=1.0,
                  tick_size=0.01, adjusted=False)),
    "EURUSD": ("eurusd_hourly.csv", "index", BT, "backtesting/test/EURUSD.csv",
               dict(name="Euro / US dollar spot", asset_class="FX", exchange="SAMPLE",
                    currency="USD", timeframe="1h", lot_size=1.0, tick_size=0.00001,
                    adjusted=False)),
    "BTCUSD": ("btcusd_monthly.csv", "month_end", BT, "backtesting/test/BTCUSD.csv",
               dict(name="Bitcoin / US dollar", asset_class="CRYPTO", exchange="SAMPLE",
                    currency="USD", timeframe="1M", lot_size=1e-8, tick_size=0.01,
                    adjusted=False)),
    "WTI": ("wti_daily.csv", "close_only", ARCH, "arch/data/wti/wti.csv.gz",
            dict(name="WTI crude oil spot (Cushing), close only", asset_class="COMMODITY",
                 exchange="SAMPLE", currency="USD", timeframe="1d", lot_size=1.0,
                 tick_size=0.01, adjusted=False)),
    "VIX": ("vix_daily.csv", "close_only", ARCH, "arch/data/vix/vix.csv.gz",
            dict(name="CBOE VIX index, close only", asset_class="INDEX", exchange="SAMPLE",
                 currency="USD", timeframe="1d", lot_size=1.0, tick_size=0.01, adjusted=False)),
}
OTHER = {
    "ff3_monthly": ("ff3_monthly.csv", ARCH, "arch/data/frenchdata/frenchdata.csv.gz",
                    "Fama-French 3 factors, monthly, in percent; Date is YYYYMM"),
    "brent_wti_monthly": ("brent_wti_monthly.csv", ARCH, "arch/data/crude/crude.csv.gz",
                          "Brent and WTI monthly averages, USD/bbl"),
}


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def read(path: Path, how: str) -> tuple[pd.DataFrame, list[str]]:
    repairs: list[str] = []
    if how == "mdy":
        df = pd.read_csv(path)
        df.index = pd.to_datetime(df.pop("Date"), format="%m/%d/%Y")
        if not (df["Adj Close"] == df["Close"]).all():
            raise SystemExit(f"{path.name}: Adj Close differs from Close; refusing to mix")
        df = df.drop(columns="Adj Close")
        repairs.append("dropped 'Adj Close' (identical to Close for an index)")
    elif how == "index":
        df = pd.read_csv(path, index_col=0)
        df.index = pd.to_datetime(df.index, format="ISO8601")
    elif how == "month_end":
        df = pd.read_csv(path, index_col=0)
        df.index = pd.to_datetime(df.index, format="ISO8601").to_period("M").to_timestamp()
        repairs.append("relabelled month-end stamps to the month's first day (bars are "
                       "labelled by period start)")
    elif how == "close_only":
        raw = pd.read_csv(path, dtype=str)
        close = pd.to_numeric(raw.iloc[:, 1], errors="coerce")
        n_missing = int(close.isna().sum())
        idx = pd.to_datetime(raw["Date"], format="%m/%d/%Y")
        keep = close.notna().to_numpy()
        close = close[keep].to_numpy()
        df = pd.DataFrame({"Open": close, "High": close, "Low": close, "Close": close,
                           "Volume": float("nan")}, index=idx[keep])
        repairs.append(f"dropped {n_missing} rows marked '.' (no quote: holidays)")
        repairs.append("close-only series: Open = High = Low = Close, Volume NaN (unknown)")
    else:
        raise ValueError(how)
    df.index = df.index.tz_localize("UTC")
    df.index.name = "timestamp"
    return df[["Open", "High", "Low", "Close", "Volume"]].astype("float64"), repairs


def main(src: Path) -> None:
    OUT.mkdir(parents=True, exist_ok=True)
    manifest: dict[str, object] = {
        "convention": "UTC; bars labelled by the start of their period (daily bar of "
                      "session date D is stamped D 00:00 UTC); float64 OHLCV",
        "instruments": {},
        "series": {},
    }
    for symbol, (fname, how, shipped, pkg_path, meta) in OHLCV.items():
        df, repairs = read(src / fname, how)
        out = OUT / f"{symbol}.csv"
        df.to_csv(out, date_format="%Y-%m-%dT%H:%M:%SZ")
        manifest["instruments"][symbol] = {
            **meta, "file": out.name, "rows": len(df),
            "start": str(df.index[0]), "end": str(df.index[-1]),
            "source": {"shipped_by": shipped, "path": pkg_path, "input_file": fname,
                       "input_sha256": sha256(src / fname)},
            "repairs": repairs, "sha256": sha256(out),
        }
    for key, (fname, shipped, pkg_path, desc) in OTHER.items():
        out = OUT / fname
        out.write_bytes((src / fname).read_bytes())
        manifest["series"][key] = {"file": fname, "description": desc,
                                   "source": {"shipped_by": shipped, "path": pkg_path},
                                   "sha256": sha256(out)}
    (OUT / "manifest.json").write_text(json.dumps(manifest, indent=2) + "\n")
    print(f"wrote {len(OHLCV) + len(OTHER)} files and manifest.json to {OUT}")


if __name__ == "__main__":
    main(Path(sys.argv[1]) if len(sys.argv) > 1 else ROOT.parent / "shared" / "datasets")
