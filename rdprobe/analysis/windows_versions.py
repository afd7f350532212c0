"""Windows product names for an OS version (major, minor, build).

The NTLM CHALLENGE VERSION field (MS-NLMP 2.2.2.10) carries the server's OS version. Client and
server editions share build numbers, so a build maps to every product released with it
("Windows 10 1809 / Windows Server 2019"). Only published release builds are listed; anything
else is named by its family with the build number left visible. Non-Windows NTLM servers may put
any value here (FreeRDP's server always says 6.1.7601), so treat the name as a claim.
"""

from __future__ import annotations

WINDOWS_BUILDS: dict[tuple[int, int, int], str] = {
    (5, 0, 2195): "Windows 2000",
    (5, 1, 2600): "Windows XP",
    (5, 2, 3790): "Windows Server 2003 / 2003 R2 (or Windows XP x64)",
    (6, 0, 6000): "Windows Vista",
    (6, 0, 6001): "Windows Vista SP1 / Windows Server 2008",
    (6, 0, 6002): "Windows Vista SP2 / Windows Server 2008 SP2",
    (6, 0, 6003): "Windows Server 2008 SP2 (2019 or later update)",
    (6, 1, 7600): "Windows 7 / Windows Server 2008 R2",
    (6, 1, 7601): "Windows 7 SP1 / Windows Server 2008 R2 SP1",
    (6, 2, 9200): "Windows 8 / Windows Server 2012",
    (6, 3, 9600): "Windows 8.1 / Windows Server 2012 R2",
    (10, 0, 10240): "Windows 10 1507",
    (10, 0, 10586): "Windows 10 1511",
    (10, 0, 14393): "Windows 10 1607 / Windows Server 2016",
    (10, 0, 15063): "Windows 10 1703",
    (10, 0, 16299): "Windows 10 1709 / Windows Server 1709",
    (10, 0, 17134): "Windows 10 1803 / Windows Server 1803",
    (10, 0, 17763): "Windows 10 1809 / Windows Server 2019",
    (10, 0, 18362): "Windows 10 1903 / Windows Server 1903",
    (10, 0, 18363): "Windows 10 1909 / Windows Server 1909",
    (10, 0, 19041): "Windows 10 2004 / Windows Server 2004",
    (10, 0, 19042): "Windows 10 20H2 / Windows Server 20H2",
    (10, 0, 19043): "Windows 10 21H1",
    (10, 0, 19044): "Windows 10 21H2",
    (10, 0, 19045): "Windows 10 22H2",
    (10, 0, 20348): "Windows Server 2022",
    (10, 0, 22000): "Windows 11 21H2",
    (10, 0, 22621): "Windows 11 22H2",
    (10, 0, 22631): "Windows 11 23H2",
    (10, 0, 25398): "Windows Server 23H2",
    (10, 0, 26100): "Windows 11 24H2 / Windows Server 2025",
    (10, 0, 26200): "Windows 11 25H2",
}

_FAMILIES: dict[tuple[int, int], str] = {
    (5, 0): "Windows 2000",
    (5, 1): "Windows XP",
    (5, 2): "Windows Server 2003 family",
    (6, 0): "Windows Vista / Server 2008 family",
    (6, 1): "Windows 7 / Server 2008 R2 family",
    (6, 2): "Windows 8 / Server 2012 family",
    (6, 3): "Windows 8.1 / Server 2012 R2 family",
    (10, 0): "Windows 10 / 11 / Server 2016 or later",
}


def windows_product(major: int, minor: int, build: int) -> str | None:
    """Exact product name(s) for a release build, or None when the build is not a known one."""
    return WINDOWS_BUILDS.get((major, minor, build))


def describe_windows_version(major: int, minor: int, build: int) -> str:
    """Always a readable name: the product when known, else the family and the build."""
    exact = windows_product(major, minor, build)
    if exact is not None:
        return exact
    family = _FAMILIES.get((major, minor))
    if family is None:
        return f"unknown OS version {major}.{minor}.{build}"
    return f"{family} (build {build}, not a known release build)"
