"""ISO 4217 alphabetic codes of currencies in circulation (plus the X-codes used in billing).

A billing currency must be one of these; anything else (e.g. Azure's placeholder `MC`, or a
misaligned CSV cell) rejects the row rather than loading a cost in an unknown unit.
"""

from attribution.ingest.errors import RowError

ISO_4217_CODES: frozenset[str] = frozenset(
    """
    AED AFN ALL AMD ANG AOA ARS AUD AWG AZN BAM BBD BDT BGN BHD BIF BMD BND BOB BOV BRL BSD BTN BWP
    BYN BZD CAD CDF CHE CHF CHW CLF CLP CNY COP COU CRC CUC CUP CVE CZK DJF DKK DOP DZD EGP ERN ETB
    EUR FJD FKP GBP GEL GHS GIP GMD GNF GTQ GYD HKD HNL HTG HUF IDR ILS INR IQD IRR ISK JMD JOD JPY
    KES KGS KHR KMF KPW KRW KWD KYD KZT LAK LBP LKR LRD LSL LYD MAD MDL MGA MKD MMK MNT MOP MRU MUR
    MVR MWK MXN MXV MYR MZN NAD NGN NIO NOK NPR NZD OMR PAB PEN PGK PHP PKR PLN PYG QAR RON RSD RUB
    RWF SAR SBD SCR SDG SEK SGD SHP SLE SLL SOS SRD SSP STN SVC SYP SZL THB TJS TMT TND TOP TRY TTD
    TWD TZS UAH UGX USD USN UYI UYU UYW UZS VED VES VND VUV WST XAF XAG XAU XBA XBB XBC XBD XCD XCG
    XDR XOF XPD XPF XPT XSU XTS XUA YER ZAR ZMW ZWG ZWL
    """.split()
)


def currency_validate(code: str) -> str:
    """Return the upper-cased code, or raise RowError naming the bad value."""
    normalized = (code or "").strip().upper()
    if normalized not in ISO_4217_CODES:
        raise RowError(f"billing currency {code!r} is not an ISO 4217 code")
    return normalized
