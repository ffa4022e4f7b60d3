"""Terraform templates in ROS's own format, and the workspace paths the stores accept.

ROS's Terraform template is an object: ``{"ROSTemplateFormatVersion": "2015-09-01", "Transform":
"Aliyun::Terraform-v1.x", "Workspace": {"main.tf": "<HCL>", "modules/vpc/main.tf": "<HCL>", ...}}``, the
Workspace's keys being file paths and its values the files' text ("Structure of Terraform templates",
https://www.alibabacloud.com/help/en/ros/user-guide/structure-of-terraform-templates). ROS constrains the
paths (an earlier edition of that page, https://www.alibabacloud.com/help/doc-detail/184397.htm): relative,
not starting with "/", at most 1,024 characters with each folder or file name at most 255, made of letters,
digits and ASCII punctuation.

The stores write each file under ``<prefix><task_id>/workspace/<path>``, the path used as it is (never
escaped: ``source = "./modules/vpc"`` must find ``modules/vpc/main.tf``). So a path that could leave that
folder, or name the same object as another, is refused, and with it the whole task, not retryably (ROS
answers the same on every retry) and naming the path: an absolute path, an empty, "." or ".." part
("a//b", "../x", "."), anything but printable ASCII without space and backslash (a NUL, a lone surrogate,
non-ASCII; "a\\b" is a folder on Windows), a path or name over ROS's lengths, two paths equal but for case
(one file on a case-insensitive file system), a path that is also another's folder ("mod" and
"mod/main.tf"), and a file that is not text.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping
from typing import Any, TypeGuard

from aitask_relay.core.model import TemplateFile

TERRAFORM_TRANSFORM = "Aliyun::Terraform-"
FOLDER = "workspace/"
MAX_PATH, MAX_NAME = 1024, 255
_PATH = re.compile(r"[!-\[\]-~]+")  # printable ASCII (0x21-0x7E) without the backslash


class WorkspaceError(ValueError):
    """A workspace that cannot be stored file by file; the message names the path."""


def is_terraform(template: object) -> TypeGuard[Mapping[str, Any]]:
    """Whether ``template`` is ROS's Terraform template object (its Transform names Terraform)."""
    if not isinstance(template, Mapping):
        return False
    transform = template.get("Transform")
    return isinstance(transform, str) and transform.startswith(TERRAFORM_TRANSFORM)


def files_of(template: Mapping[str, Any]) -> tuple[TemplateFile, ...]:
    """The workspace files of a Terraform template, in ROS's order; raises WorkspaceError naming a path
    the stores must not write."""
    workspace = template.get("Workspace")
    if not isinstance(workspace, Mapping):
        raise WorkspaceError(f"its Workspace is {type(workspace).__name__}, not an object of file paths")
    files = []
    for path, text in workspace.items():
        problem = path_problem(path)
        if problem is not None:
            raise WorkspaceError(f"workspace path {show(path)} {problem}")
        if not isinstance(text, str):
            raise WorkspaceError(f"workspace path {show(path)} holds {type(text).__name__}, not the text of a file")
        try:
            body = text.encode("utf-8")
        except UnicodeEncodeError:  # a lone surrogate from a \ud800 escape: no UTF-8 file can hold it
            raise WorkspaceError(f"workspace path {show(path)} holds text that is not valid Unicode") from None
        files.append(TemplateFile(path, body, hashlib.sha256(body).hexdigest()))
    _refuse_clashes([f.path for f in files])
    return tuple(files)


def path_problem(path: object) -> str | None:
    """Why ``path`` may not be written under a task's workspace folder, or None when it may."""
    if not isinstance(path, str):
        return "is not text"
    if not path:
        return "is empty"
    if len(path) > MAX_PATH:
        return f"is longer than {MAX_PATH} characters"
    if _PATH.fullmatch(path) is None:
        return "holds a space, a backslash, a control character or a character that is not ASCII"
    if path.startswith("/"):
        return "is absolute"
    for name in path.split("/"):
        if name in ("", ".", ".."):
            return "has an empty, '.' or '..' part"
        if len(name) > MAX_NAME:
            return f"has a part longer than {MAX_NAME} characters"
    return None


def show(path: object) -> str:
    """A path as an ASCII literal, cut at 80 characters (for messages: no control character, no surrogate)."""
    if not isinstance(path, str):
        return type(path).__name__
    return ascii(path[:80]) + ("..." if len(path) > 80 else "")


def _refuse_clashes(paths: list[str]) -> None:
    files: dict[str, str] = {}
    folders: dict[str, str] = {}
    for path in paths:
        key = path.lower()
        if key in files:
            raise WorkspaceError(f"workspace paths {show(files[key])} and {show(path)} differ only in case")
        files[key] = path
        parts = path.split("/")
        for end in range(1, len(parts)):
            # A folder written in two casings ("a/B/c.tf", "a/b/d.tf") is one folder on a case-insensitive file
            # system and two elsewhere: the module that names one of them would miss files.
            folder = "/".join(parts[:end])
            seen = folders.setdefault(folder.lower(), path)
            if seen != path and seen.split("/")[: end] != parts[:end]:
                raise WorkspaceError(f"workspace paths {show(seen)} and {show(path)} name one folder in two casings")
    for key, path in files.items():
        if key in folders:
            raise WorkspaceError(f"workspace path {show(path)} is also the folder of {show(folders[key])}")
