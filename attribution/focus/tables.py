"""Readable FOCUS 1.2 tables per provider: ServiceCategory and ServiceSubcategory per ServiceName,
region names per RegionId, and units in the FOCUS unit format.

Finance checks these by reading them, like the cost rules in attribution/ingest/mapping.py. Every
value is a pure function of the provider's own value, so one ServiceName always has exactly one
category and one subcategory (FOCUS ServiceName-C-005/C-008), also for names not listed here: those
go through the keyword rules below, then "Other".
"""

from __future__ import annotations

import re
import unicodedata
from functools import lru_cache

# FOCUS 1.2 ServiceCategory -> its allowed ServiceSubcategory values (the spec's appendix).
SUBCATEGORIES: dict[str, tuple[str, ...]] = {
    "AI and Machine Learning": (
        "AI Platforms", "Bots", "Generative AI", "Machine Learning", "Natural Language Processing",
    ),
    "Analytics": (
        "Analytics Platforms", "Business Intelligence", "Data Processing", "Search", "Streaming Analytics",
    ),
    "Business Applications": ("Productivity and Collaboration",),
    "Compute": (
        "Containers", "End User Computing", "Quantum Compute", "Serverless Compute", "Virtual Machines",
    ),
    "Databases": (
        "Caching", "Data Warehouses", "Ledger Databases", "NoSQL Databases", "Relational Databases",
        "Time Series Databases",
    ),
    "Developer Tools": (
        "Developer Platforms", "Continuous Integration and Deployment", "Development Environments",
        "Source Code Management", "Quality Assurance",
    ),
    "Identity": ("Identity and Access Management",),
    "Integration": ("API Management", "Messaging", "Workflow Orchestration"),
    "Internet of Things": ("IoT Analytics", "IoT Platforms"),
    "Management and Governance": (
        "Architecture", "Compliance", "Cost Management", "Data Governance", "Disaster Recovery",
        "Endpoint Management", "Observability", "Support",
    ),
    "Media": ("Content Creation", "Gaming", "Media Streaming", "Mixed Reality"),
    "Migration": ("Data Migration", "Resource Migration"),
    "Mobile": (),
    "Multicloud": ("Multicloud Integration",),
    "Networking": (
        "Application Networking", "Content Delivery", "Network Connectivity", "Network Infrastructure",
        "Network Routing", "Network Security",
    ),
    "Security": ("Security Posture Management", "Threat Detection and Response"),
    "Storage": ("Backup Storage", "Block Storage", "File Storage", "Object Storage", "Storage Platforms"),
    "Web": ("Application Platforms",),
    "Other": (),
}  # fmt: skip


def other_subcategory(category: str) -> str:
    return f"Other ({category})"


# ServiceName (lower-cased) -> (ServiceCategory, ServiceSubcategory). AWS names appear as the
# product name (CUR 2.0 `product_product_name`), the service code or the product code.
AWS_SERVICES: dict[str, tuple[str, str]] = {
    "amazon elastic compute cloud": ("Compute", "Virtual Machines"),
    "amazonec2": ("Compute", "Virtual Machines"),
    "ec2": ("Compute", "Virtual Machines"),
    "computesavingsplans": ("Compute", "Virtual Machines"),
    "savings plans for aws compute usage": ("Compute", "Virtual Machines"),
    "amazon elastic kubernetes service": ("Compute", "Containers"),
    "amazoneks": ("Compute", "Containers"),
    "amazon elastic container service": ("Compute", "Containers"),
    "amazonecs": ("Compute", "Containers"),
    "aws lambda": ("Compute", "Serverless Compute"),
    "awslambda": ("Compute", "Serverless Compute"),
    "amazon sagemaker": ("AI and Machine Learning", "Machine Learning"),
    "amazonsagemaker": ("AI and Machine Learning", "Machine Learning"),
    "amazon bedrock": ("AI and Machine Learning", "Generative AI"),
    "amazonbedrock": ("AI and Machine Learning", "Generative AI"),
    "amazon simple storage service": ("Storage", "Object Storage"),
    "amazons3": ("Storage", "Object Storage"),
    "amazon glacier": ("Storage", "Backup Storage"),
    "amazonglacier": ("Storage", "Backup Storage"),
    "amazon elastic file system": ("Storage", "File Storage"),
    "amazonefs": ("Storage", "File Storage"),
    "amazon relational database service": ("Databases", "Relational Databases"),
    "amazonrds": ("Databases", "Relational Databases"),
    "amazon dynamodb": ("Databases", "NoSQL Databases"),
    "amazondynamodb": ("Databases", "NoSQL Databases"),
    "amazon elasticache": ("Databases", "Caching"),
    "amazonelasticache": ("Databases", "Caching"),
    "amazon redshift": ("Databases", "Data Warehouses"),
    "amazonredshift": ("Databases", "Data Warehouses"),
    "amazon athena": ("Analytics", "Data Processing"),
    "amazonathena": ("Analytics", "Data Processing"),
    "aws glue": ("Analytics", "Data Processing"),
    "awsglue": ("Analytics", "Data Processing"),
    "amazon quicksight": ("Analytics", "Business Intelligence"),
    "amazonquicksight": ("Analytics", "Business Intelligence"),
    "amazon kinesis": ("Analytics", "Streaming Analytics"),
    "amazonkinesis": ("Analytics", "Streaming Analytics"),
    "amazon cloudwatch": ("Management and Governance", "Observability"),
    "amazoncloudwatch": ("Management and Governance", "Observability"),
    "cloudwatch events": ("Management and Governance", "Observability"),
    "aws cloudtrail": ("Management and Governance", "Compliance"),
    "awscloudtrail": ("Management and Governance", "Compliance"),
    "aws config": ("Management and Governance", "Compliance"),
    "awsconfig": ("Management and Governance", "Compliance"),
    "aws budgets": ("Management and Governance", "Cost Management"),
    "awsbudgets": ("Management and Governance", "Cost Management"),
    "aws cost explorer": ("Management and Governance", "Cost Management"),
    "aws support (business)": ("Management and Governance", "Support"),
    "aws support (enterprise)": ("Management and Governance", "Support"),
    "aws support (developer)": ("Management and Governance", "Support"),
    "aws key management service": ("Security", "Other (Security)"),
    "awskms": ("Security", "Other (Security)"),
    "amazon guardduty": ("Security", "Threat Detection and Response"),
    "amazonguardduty": ("Security", "Threat Detection and Response"),
    "aws security hub": ("Security", "Security Posture Management"),
    "aws identity and access management": ("Identity", "Identity and Access Management"),
    "amazon simple notification service": ("Integration", "Messaging"),
    "amazonsns": ("Integration", "Messaging"),
    "amazon simple queue service": ("Integration", "Messaging"),
    "awsqueueservice": ("Integration", "Messaging"),
    "amazon api gateway": ("Integration", "API Management"),
    "amazonapigateway": ("Integration", "API Management"),
    "aws step functions": ("Integration", "Workflow Orchestration"),
    "awsdatatransfer": ("Networking", "Network Connectivity"),
    "aws data transfer": ("Networking", "Network Connectivity"),
    "amazon virtual private cloud": ("Networking", "Network Infrastructure"),
    "amazonvpc": ("Networking", "Network Infrastructure"),
    "amazon cloudfront": ("Networking", "Content Delivery"),
    "amazoncloudfront": ("Networking", "Content Delivery"),
    "amazon route 53": ("Networking", "Network Routing"),
    "amazonroute53": ("Networking", "Network Routing"),
    "elastic load balancing": ("Networking", "Application Networking"),
    "awselb": ("Networking", "Application Networking"),
}

GCP_SERVICES: dict[str, tuple[str, str]] = {
    "compute engine": ("Compute", "Virtual Machines"),
    "kubernetes engine": ("Compute", "Containers"),
    "cloud run": ("Compute", "Serverless Compute"),
    "cloud functions": ("Compute", "Serverless Compute"),
    "vertex ai": ("AI and Machine Learning", "AI Platforms"),
    "gemini api": ("AI and Machine Learning", "Generative AI"),
    "cloud storage": ("Storage", "Object Storage"),
    "filestore": ("Storage", "File Storage"),
    "bigquery": ("Databases", "Data Warehouses"),
    "cloud sql": ("Databases", "Relational Databases"),
    "cloud spanner": ("Databases", "Relational Databases"),
    "cloud bigtable": ("Databases", "NoSQL Databases"),
    "firestore": ("Databases", "NoSQL Databases"),
    "cloud memorystore for redis": ("Databases", "Caching"),
    "dataflow": ("Analytics", "Data Processing"),
    "cloud dataproc": ("Analytics", "Data Processing"),
    "cloud pub/sub": ("Integration", "Messaging"),
    "networking": ("Networking", "Network Connectivity"),
    "cloud dns": ("Networking", "Network Routing"),
    "cloud cdn": ("Networking", "Content Delivery"),
    "cloud load balancing": ("Networking", "Application Networking"),
    "cloud logging": ("Management and Governance", "Observability"),
    "stackdriver logging": ("Management and Governance", "Observability"),
    "cloud monitoring": ("Management and Governance", "Observability"),
    "stackdriver monitoring": ("Management and Governance", "Observability"),
    "security command center": ("Security", "Security Posture Management"),
    "cloud key management service (kms)": ("Security", "Other (Security)"),
    "support": ("Management and Governance", "Support"),
}

AZURE_SERVICES: dict[str, tuple[str, str]] = {
    "virtual machines": ("Compute", "Virtual Machines"),
    "virtual machines licenses": ("Compute", "Virtual Machines"),
    "azure kubernetes service": ("Compute", "Containers"),
    "container instances": ("Compute", "Containers"),
    "functions": ("Compute", "Serverless Compute"),
    "azure app service": ("Web", "Application Platforms"),
    "cognitive services": ("AI and Machine Learning", "AI Platforms"),
    "azure openai service": ("AI and Machine Learning", "Generative AI"),
    "azure machine learning": ("AI and Machine Learning", "Machine Learning"),
    "machine learning": ("AI and Machine Learning", "Machine Learning"),
    "storage": ("Storage", "Storage Platforms"),
    "backup": ("Storage", "Backup Storage"),
    "sql database": ("Databases", "Relational Databases"),
    "sql managed instance": ("Databases", "Relational Databases"),
    "azure database for mysql": ("Databases", "Relational Databases"),
    "azure database for postgresql": ("Databases", "Relational Databases"),
    "azure cosmos db": ("Databases", "NoSQL Databases"),
    "redis cache": ("Databases", "Caching"),
    "azure synapse analytics": ("Databases", "Data Warehouses"),
    "log analytics": ("Management and Governance", "Observability"),
    "azure monitor": ("Management and Governance", "Observability"),
    "bandwidth": ("Networking", "Network Connectivity"),
    "virtual network": ("Networking", "Network Infrastructure"),
    "load balancer": ("Networking", "Application Networking"),
    "application gateway": ("Networking", "Application Networking"),
    "vpn gateway": ("Networking", "Network Connectivity"),
    "azure dns": ("Networking", "Network Routing"),
    "content delivery network": ("Networking", "Content Delivery"),
    "advanced data security": ("Security", "Security Posture Management"),
    "advanced threat protection": ("Security", "Threat Detection and Response"),
    "microsoft defender for cloud": ("Security", "Security Posture Management"),
    "key vault": ("Security", "Other (Security)"),
    "service bus": ("Integration", "Messaging"),
    "event hubs": ("Analytics", "Streaming Analytics"),
    "api management": ("Integration", "API Management"),
    "logic apps": ("Integration", "Workflow Orchestration"),
}

SERVICES_BY_PROVIDER: dict[str, dict[str, tuple[str, str]]] = {
    "aws": AWS_SERVICES,
    "gcp": GCP_SERVICES,
    "azure": AZURE_SERVICES,
}

# For names not in the tables (every provider launches services): words in the name, in order.
_KEYWORDS: tuple[tuple[str, str, str], ...] = (
    ("bedrock", "AI and Machine Learning", "Generative AI"),
    ("openai", "AI and Machine Learning", "Generative AI"),
    ("gemini", "AI and Machine Learning", "Generative AI"),
    ("sagemaker", "AI and Machine Learning", "Machine Learning"),
    ("machine learning", "AI and Machine Learning", "Machine Learning"),
    ("vertex", "AI and Machine Learning", "AI Platforms"),
    ("cognitive", "AI and Machine Learning", "AI Platforms"),
    ("kubernetes", "Compute", "Containers"),
    ("container", "Compute", "Containers"),
    ("lambda", "Compute", "Serverless Compute"),
    ("function", "Compute", "Serverless Compute"),
    ("virtual machine", "Compute", "Virtual Machines"),
    ("compute", "Compute", "Other (Compute)"),
    ("linux", "Compute", "Virtual Machines"),
    ("windows", "Compute", "Virtual Machines"),
    ("database", "Databases", "Other (Databases)"),
    ("sql", "Databases", "Relational Databases"),
    ("cache", "Databases", "Caching"),
    ("storage", "Storage", "Other (Storage)"),
    ("backup", "Storage", "Backup Storage"),
    ("bandwidth", "Networking", "Network Connectivity"),
    ("data transfer", "Networking", "Network Connectivity"),
    ("network", "Networking", "Other (Networking)"),
    ("dns", "Networking", "Network Routing"),
    ("cdn", "Networking", "Content Delivery"),
    ("security", "Security", "Other (Security)"),
    ("threat", "Security", "Threat Detection and Response"),
    ("identity", "Identity", "Identity and Access Management"),
    ("monitor", "Management and Governance", "Observability"),
    ("logging", "Management and Governance", "Observability"),
    ("log ", "Management and Governance", "Observability"),
    ("support", "Management and Governance", "Support"),
    ("analytics", "Analytics", "Other (Analytics)"),
    ("queue", "Integration", "Messaging"),
    ("notification", "Integration", "Messaging"),
)


def ascii_text(value: str) -> str:
    """FOCUS StringHandling wants ASCII where the spec says so (ServiceName-C-002): accents are
    folded, symbols such as ® dropped, runs of spaces collapsed."""
    if value.isascii():
        return value
    folded = unicodedata.normalize("NFKD", value).encode("ascii", "ignore").decode("ascii")
    return re.sub(r"\s+", " ", folded).strip()


@lru_cache(maxsize=4096)
def service_classify(provider: str, service_name: str, given_category: str = "") -> tuple[str, str]:
    """(ServiceCategory, ServiceSubcategory) of a ServiceName.

    Order: the provider's table; the category a FOCUS export already gave (when it is a FOCUS value)
    with its "Other (...)" subcategory; keywords in the name; "Other". The result depends only on
    the arguments, so a name cannot get two categories within one provider's export.
    """
    name = service_name.strip().lower()
    found = SERVICES_BY_PROVIDER.get(provider, {}).get(name)
    if found is None:
        for table in SERVICES_BY_PROVIDER.values():
            found = table.get(name)
            if found:
                break
    if found:
        return found
    if given_category in SUBCATEGORIES:
        return given_category, other_subcategory(given_category)
    for word, category, subcategory in _KEYWORDS:
        if word in name:
            return category, subcategory
    return "Other", other_subcategory("Other")


def service_classify_keeping(
    provider: str, service_name: str, given_category: str = "", given_subcategory: str = ""
) -> tuple[str, str]:
    """service_classify, keeping the subcategory a FOCUS export gave when it is one of the
    category's allowed values (the provider knows its service better than a table of names): the
    category still comes from service_classify, so a name keeps one category."""
    category, subcategory = service_classify(provider, service_name, given_category)
    given = given_subcategory.strip()
    if given and (given in SUBCATEGORIES.get(category, ()) or given == other_subcategory(category)):
        return category, given
    return category, subcategory


# RegionId -> RegionName. AWS and GCP publish these names; Azure's region ids are already
# readable names without spaces, and the display name is derived from them.
AWS_REGIONS: dict[str, str] = {
    "us-east-1": "US East (N. Virginia)", "us-east-2": "US East (Ohio)",
    "us-west-1": "US West (N. California)", "us-west-2": "US West (Oregon)",
    "af-south-1": "Africa (Cape Town)", "ap-east-1": "Asia Pacific (Hong Kong)",
    "ap-south-1": "Asia Pacific (Mumbai)", "ap-south-2": "Asia Pacific (Hyderabad)",
    "ap-northeast-1": "Asia Pacific (Tokyo)", "ap-northeast-2": "Asia Pacific (Seoul)",
    "ap-northeast-3": "Asia Pacific (Osaka)", "ap-southeast-1": "Asia Pacific (Singapore)",
    "ap-southeast-2": "Asia Pacific (Sydney)", "ap-southeast-3": "Asia Pacific (Jakarta)",
    "ap-southeast-4": "Asia Pacific (Melbourne)", "ca-central-1": "Canada (Central)",
    "eu-central-1": "Europe (Frankfurt)", "eu-central-2": "Europe (Zurich)",
    "eu-west-1": "Europe (Ireland)", "eu-west-2": "Europe (London)", "eu-west-3": "Europe (Paris)",
    "eu-north-1": "Europe (Stockholm)", "eu-south-1": "Europe (Milan)", "eu-south-2": "Europe (Spain)",
    "me-south-1": "Middle East (Bahrain)", "me-central-1": "Middle East (UAE)",
    "sa-east-1": "South America (Sao Paulo)", "il-central-1": "Israel (Tel Aviv)",
    "us-gov-west-1": "AWS GovCloud (US-West)", "us-gov-east-1": "AWS GovCloud (US-East)",
    "global": "Global",
}  # fmt: skip

GCP_REGIONS: dict[str, str] = {
    "us-central1": "Iowa", "us-east1": "South Carolina", "us-east4": "Northern Virginia",
    "us-east5": "Columbus", "us-west1": "Oregon", "us-west2": "Los Angeles", "us-west3": "Salt Lake City",
    "us-west4": "Las Vegas", "us-south1": "Dallas", "northamerica-northeast1": "Montreal",
    "northamerica-northeast2": "Toronto", "southamerica-east1": "Sao Paulo",
    "europe-west1": "Belgium", "europe-west2": "London", "europe-west3": "Frankfurt",
    "europe-west4": "Netherlands", "europe-west6": "Zurich", "europe-west9": "Paris",
    "europe-north1": "Finland", "europe-central2": "Warsaw", "asia-east1": "Taiwan",
    "asia-east2": "Hong Kong", "asia-northeast1": "Tokyo", "asia-northeast2": "Osaka",
    "asia-northeast3": "Seoul", "asia-south1": "Mumbai", "asia-southeast1": "Singapore",
    "asia-southeast2": "Jakarta", "australia-southeast1": "Sydney", "me-west1": "Tel Aviv",
    "us": "United States (multi-region)", "eu": "European Union (multi-region)",
    "asia": "Asia (multi-region)", "global": "Global",
}  # fmt: skip

REGIONS_BY_PROVIDER: dict[str, dict[str, str]] = {"aws": AWS_REGIONS, "gcp": GCP_REGIONS}

_AZURE_WORDS = re.compile(r"(north|south|east|west|central|us|uk|europe|asia|pacific|japan|india|australia|"
                          r"brazil|canada|france|germany|korea|norway|switzerland|uae|africa|sweden|italy|"
                          r"poland|qatar|israel|mexico|spain|gov|\d+)")  # fmt: skip


@lru_cache(maxsize=2048)
def region_name(provider: str, region_id: str) -> str:
    """RegionName for a RegionId: the provider's published name, else the id itself (a RegionId
    is a readable name too, and RegionName MUST NOT be null when RegionId is set)."""
    if not region_id:
        return ""
    known = REGIONS_BY_PROVIDER.get(provider, {}).get(region_id.lower())
    if known:
        return known
    if provider == "azure" and region_id.isalnum() and region_id.islower():
        words = [w for w in _AZURE_WORDS.split(region_id) if w]
        return " ".join(w.upper() if w in ("us", "uk", "uae") else w.capitalize() for w in words)
    return region_id


# Provider unit -> FOCUS unit format (FOCUS 1.2 appendix "Unit Format": plural time units,
# "<unit>-<plural time>", "<unit>/<singular time>", "<count> <unit>", decimal/binary byte units).
UNITS: dict[str, str] = {
    # AWS pricing units
    "hrs": "Hours", "hr": "Hours", "hour": "Hours", "hours": "Hours",
    "gb-mo": "GB-Months", "gb-month": "GB-Months", "gb-hours": "GB-Hours", "gb-hr": "GB-Hours",
    "iops-mo": "IOPS-Months", "gibps-mo": "GiBps-Months", "mbps-mo": "Mbps-Months",
    "dpu-hour": "DPU-Hours", "acu-hr": "ACU-Hours", "lcu-hrs": "LCU-Hours", "nlcu-hrs": "NLCU-Hours",
    "vcpu-hours": "vCPU-Hours", "vcpu-hour": "vCPU-Hours", "gb-second": "GB-Seconds",
    "lambda-gb-second": "GB-Seconds", "second": "Seconds", "seconds": "Seconds",
    "minute": "Minutes", "minutes": "Minutes", "mins": "Minutes",
    "day": "Days", "days": "Days", "month": "Months", "months": "Months", "mo": "Months",
    "gb": "GB", "tb": "TB", "mb": "MB", "kb": "KB", "terabytes": "TB", "gigabytes": "GB",
    "gib": "GiB", "tib": "TiB", "gibibyte": "GiB", "tebibyte": "TiB", "mebibyte": "MiB",
    "requests": "Requests", "request": "Requests", "ios": "IOs", "events": "Events", "count": "Count",
    "1k tokens": "1000 Tokens", "1m tokens": "1000000 Tokens", "64k-chunks": "Chunks",
    "user": "Users", "users": "Users",
    # GCP pricing and usage units
    "gibibyte hour": "GiB-Hours", "gibibyte month": "GiB-Months", "gibibyte second": "GiB-Seconds",
    "byte-seconds": "B-Seconds", "bytes": "B", "byte": "B",
    # Azure units of measure
    "1 hour": "Hours", "1 hours": "Hours", "1 gb": "GB", "1 gb/month": "GB-Months", "1/day": "Units/Day",
    "1/month": "Units/Month", "1/hour": "Units/Hour", "10k": "10000 Units", "1k": "1000 Units",
    "1m": "1000000 Units", "1 gb/hour": "GB/Hour", "1 tb/month": "TB-Months",
}  # fmt: skip

_SIZE = {"b": "B", "kb": "KB", "mb": "MB", "gb": "GB", "tb": "TB", "pb": "PB", "kib": "KiB", "mib": "MiB",
         "gib": "GiB", "tib": "TiB"}  # fmt: skip
_COUNT_PREFIX = re.compile(r"^(\d+)\s*([kKmM]?)\s+(.+)$")
_MULTIPLIER = {"": 1, "k": 1000, "m": 1_000_000}
_FOCUS_UNIT = re.compile(
    r"^(?:[0-9]+ )?[A-Za-z][A-Za-z0-9]*(?:\s+[A-Za-z][A-Za-z0-9]*)*"
    r"(?:-(?:Years|Months|Days|Hours|Minutes|Seconds)|/(?:Year|Month|Day|Hour|Minute|Second))?$"
)


@lru_cache(maxsize=4096)
def unit_normalize(unit: str) -> str:
    """A provider's unit in the FOCUS unit format; "" stays "". Unknown units are kept when they
    already conform, else reduced to their words (e.g. "Tokens (1K)" -> "Tokens 1K" is refused by
    the format, so "1000 Tokens" needs a table entry; the fallback keeps letters and digits)."""
    text = unit.strip()
    if not text:
        return ""
    known = UNITS.get(text.lower())
    if known:
        return known
    count = _COUNT_PREFIX.match(text)
    if count:
        number, prefix, rest = count.groups()
        base = unit_normalize(rest)
        if _FOCUS_UNIT.match(base) and not base[0].isdigit():
            return f"{int(number) * _MULTIPLIER[prefix.lower()]} {base}"
    if "/" in text:
        head, _, tail = text.partition("/")
        head_unit = _SIZE.get(head.strip().lower()) or unit_normalize(head)
        tail_unit = UNITS.get(tail.strip().lower(), tail.strip()).rstrip("s")
        candidate = f"{head_unit}/{tail_unit}"
        if _FOCUS_UNIT.match(candidate):
            return candidate
    if _FOCUS_UNIT.match(text):
        return text
    words = re.findall(r"[A-Za-z][A-Za-z0-9]*", text)
    return " ".join(words) or "Units"
