"""Build the vendor payloads the adapter tests replay (``tests/payloads/``).

This machine cannot reach Yahoo or Binance, so the payloads are *constructed* in each
vendor's wire format from the real sample prices, field for field as the public APIs
return them (Yahoo v8 ``/finance/chart``; Binance ``/api/v3/exchangeInfo`` and
``/api/v3/klines``). With network access, ``--record`` fetches real ones instead. Run:

    .venv/bin/python scripts/make_vendor_payloads.py
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "tests" / "payloads"
NY = "America/New_York"


def _read(symbol: str) -> pd.DataFrame:
    df = pd.read_csv(ROOT / "data" / "sample" / f"{symbol}.csv", index_col=0)
    df.index = pd.to_datetime(df.index, utc=True)
    return df


def yahoo_chart(
    symbol: str,
    bars: pd.DataFrame,
    adjclose: np.ndarray,
    dividends: dict[int, float],
    granularity: str = "1d",
    tz: str = NY,
    decimals: int = 2,
) -> dict:
    if granularity == "1d":  # Yahoo stamps a daily bar at the session's 09:30 New York open
        opens = [pd.Timestamp(d.date()).tz_localize(NY) + pd.Timedelta(hours=9, minutes=30) for d in bars.index]
        stamps = [int(t.timestamp()) for t in opens]
    else:  # intraday bars are stamped at their start, in epoch seconds
        stamps = [int(t.timestamp()) for t in bars.index]
    events = (
        {"dividends": {str(k): {"amount": v, "date": k} for k, v in dividends.items()}}
        if dividends
        else {}
    )
    return {"chart": {"result": [{
        "meta": {"currency": "USD", "symbol": symbol, "exchangeName": "NMS", "fullExchangeName": "NasdaqGS",
                 "instrumentType": "EQUITY", "firstTradeDate": stamps[0], "regularMarketTime": stamps[-1],
                 "hasPrePostMarketData": True, "gmtoffset": -18000, "timezone": "EST",
                 "exchangeTimezoneName": tz, "regularMarketPrice": float(bars["Close"].iloc[-1]),
                 "chartPreviousClose": float(bars["Close"].iloc[0]), "priceHint": 2,
                 "currentTradingPeriod": {
                     "pre": {"timezone": "EST", "start": stamps[-1] - 19800, "end": stamps[-1], "gmtoffset": -18000},
                     "regular": {"timezone": "EST", "start": stamps[-1], "end": stamps[-1] + 23400, "gmtoffset": -18000},
                     "post": {"timezone": "EST", "start": stamps[-1] + 23400, "end": stamps[-1] + 37800, "gmtoffset": -18000}},
                 "dataGranularity": granularity, "range": "",
                 "validRanges": ["1d", "5d", "1mo", "3mo", "6mo", "1y", "2y", "5y", "10y", "ytd", "max"]},
        "timestamp": stamps,
        **({"events": events} if events else {}),
        "indicators": {
            "quote": [{"open": bars["Open"].round(decimals).tolist(), "high": bars["High"].round(decimals).tolist(),
                       "low": bars["Low"].round(decimals).tolist(), "close": bars["Close"].round(decimals).tolist(),
                       "volume": bars["Volume"].astype("int64").tolist()}],
            "adjclose": [{"adjclose": np.round(adjclose, 6).tolist()}]}}], "error": None}}  # fmt: skip


def binance(bars: pd.DataFrame) -> tuple[dict, list]:
    info = {"timezone": "UTC", "serverTime": int(bars.index[-1].timestamp() * 1000), "rateLimits": [
        {"rateLimitType": "REQUEST_WEIGHT", "interval": "MINUTE", "intervalNum": 1, "limit": 6000}],
        "exchangeFilters": [], "symbols": [{
            "symbol": "BTCUSDT", "status": "TRADING", "baseAsset": "BTC", "baseAssetPrecision": 8,
            "quoteAsset": "USDT", "quotePrecision": 8, "quoteAssetPrecision": 8, "baseCommissionPrecision": 8,
            "quoteCommissionPrecision": 8, "orderTypes": ["LIMIT", "LIMIT_MAKER", "MARKET", "STOP_LOSS_LIMIT",
            "TAKE_PROFIT_LIMIT"], "icebergAllowed": True, "ocoAllowed": True, "otoAllowed": True,
            "quoteOrderQtyMarketAllowed": True, "allowTrailingStop": True, "cancelReplaceAllowed": True,
            "isSpotTradingAllowed": True, "isMarginTradingAllowed": True, "filters": [
                {"filterType": "PRICE_FILTER", "minPrice": "0.01000000", "maxPrice": "1000000.00000000", "tickSize": "0.01000000"},
                {"filterType": "LOT_SIZE", "minQty": "0.00001000", "maxQty": "9000.00000000", "stepSize": "0.00001000"},
                {"filterType": "NOTIONAL", "minNotional": "5.00000000", "applyMinToMarket": True,
                 "maxNotional": "9000000.00000000", "applyMaxToMarket": False, "avgPriceMins": 5}],
            "permissions": [], "permissionSets": [["SPOT", "MARGIN"]], "defaultSelfTradePreventionMode": "EXPIRE_MAKER",
            "allowedSelfTradePreventionModes": ["EXPIRE_TAKER", "EXPIRE_MAKER", "EXPIRE_BOTH"]}]}  # fmt: skip
    klines = []
    for t, row in bars.iterrows():
        ms = int(t.timestamp() * 1000)
        vol = float(row["Volume"])
        klines.append([ms, f"{row['Open']:.2f}", f"{row['High']:.2f}", f"{row['Low']:.2f}", f"{row['Close']:.2f}",
                       f"{vol:.5f}", ms + 3_599_999, f"{vol * row['Close']:.8f}", int(vol * 37) + 1,
                       f"{vol / 2:.5f}", f"{vol / 2 * row['Close']:.8f}", "0"])  # fmt: skip
    return info, klines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--record", action="store_true", help="fetch real payloads (needs network)")
    args = parser.parse_args()
    if args.record:
        raise SystemExit(
            "recording needs network access to query2.finance.yahoo.com and api.binance.com"
        )
    OUT.mkdir(parents=True, exist_ok=True)
    goog = _read("GOOG").loc["2012-12-03":"2013-03-01"]
    # GOOG paid no dividend in this window, so Yahoo's adjclose equals close
    (OUT / "yahoo_chart_GOOG_1d.json").write_text(
        json.dumps(yahoo_chart("GOOG", goog, goog["Close"].round(2).to_numpy(), {}))
    )
    # a dividend payer, for raw vs adjusted: S&P 500 levels / 10 with a 1.5 dividend on 2018-03-16
    spx = _read("SPX").loc["2018-01-02":"2018-06-29"].copy()
    spx[["Open", "High", "Low", "Close"]] = (spx[["Open", "High", "Low", "Close"]] / 10).round(2)
    ex = pd.Timestamp("2018-03-16", tz="UTC")
    factor = np.where(
        spx.index < ex, 1 - 1.5 / spx["Close"].shift(1).loc[ex], 1.0
    )  # Yahoo's back-adjustment
    ex_stamp = int(
        (pd.Timestamp("2018-03-16").tz_localize(NY) + pd.Timedelta(hours=9, minutes=30)).timestamp()
    )
    (OUT / "yahoo_chart_DIVCO_1d.json").write_text(
        json.dumps(yahoo_chart("DIVCO", spx, spx["Close"].to_numpy() * factor, {ex_stamp: 1.5}))
    )
    # Yahoo FX hourly bars (EURUSD=X): the sample's EUR/USD hours; Yahoo reports FX volume as 0
    fx = _read("EURUSD").loc["2017-05-01":"2017-05-05"].copy()
    fx["Volume"] = 0
    chart = yahoo_chart("EURUSD=X", fx, fx["Close"].to_numpy(), {}, granularity="1h", tz="Europe/London", decimals=5)
    meta = chart["chart"]["result"][0]["meta"]
    meta.update(instrumentType="CURRENCY", exchangeName="CCY", fullExchangeName="CCY", gmtoffset=3600, timezone="BST")
    days = pd.date_range("2017-04-30", "2017-05-06", freq="D", tz="Europe/London")  # FX trades around the clock
    meta["tradingPeriods"] = [[{"timezone": "BST", "start": int(d.timestamp()), "end": int((d + pd.Timedelta(days=1)).timestamp()),
                                "gmtoffset": 3600}] for d in days]  # fmt: skip
    chart["chart"]["result"][0]["indicators"].pop("adjclose")  # Yahoo sends no adjclose for intraday
    (OUT / "yahoo_chart_EURUSD=X_1h.json").write_text(json.dumps(chart))
    # Binance BTC/USDT hourly klines: the EUR/USD hourly path rescaled to a BTC-like level
    eur = _read("EURUSD").iloc[:2500].copy()
    eur[["Open", "High", "Low", "Close"]] *= 20_000
    eur["Volume"] = eur["Volume"] / 1000
    eur = eur[~eur.index.duplicated()]
    full = pd.date_range(
        eur.index[0], periods=len(eur), freq="1h", tz="UTC"
    )  # Binance never skips an hour
    eur.index = full
    info, klines = binance(eur)
    (OUT / "binance_exchangeInfo.json").write_text(json.dumps(info))
    (OUT / "binance_klines_BTCUSDT_1h.json").write_text(json.dumps(klines))
    print(f"wrote payloads to {OUT}")


if __name__ == "__main__":
    main()
