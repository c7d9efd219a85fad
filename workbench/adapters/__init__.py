"""Adapters at the edge: price sources (sample, local files, synthetic, yfinance, ccxt)
and the Parquet cache. Each implements a port owned by the domain
(:class:`workbench.market.PriceSource`); vendor libraries are imported only in here."""
