"""The git commit recorded in a job's provenance, read through the caches that keep it off
a submit's path: every change to the repository is seen by the next read."""

from __future__ import annotations

import subprocess
from pathlib import Path

from parallelworks_lab.guidance.provenance import GitDirCache, HeadCache, git_commit

GIT_ENV = {
    "GIT_AUTHOR_NAME": "t",
    "GIT_AUTHOR_EMAIL": "t@x",
    "GIT_COMMITTER_NAME": "t",
    "GIT_COMMITTER_EMAIL": "t@x",
    "GIT_CONFIG_NOSYSTEM": "1",
    "PATH": "/usr/bin:/bin",
}


def git(repo: Path, *args: str) -> str:
    env = {**GIT_ENV, "HOME": str(repo)}
    done = subprocess.run(
        ["git", *args], cwd=repo, env=env, check=True, capture_output=True, text=True
    )
    return done.stdout.strip()


def new_repo(path: Path) -> Path:
    path.mkdir(parents=True)
    git(path, "init", "-q", "-b", "main")
    git(path, "commit", "-q", "--allow-empty", "-m", "first")
    return path


def test_every_change_of_the_checked_out_commit_is_seen(tmp_path: Path) -> None:
    repo = new_repo(tmp_path / "repo")
    work = repo / "runs" / "a"
    work.mkdir(parents=True)
    dirs, heads = GitDirCache(), HeadCache()

    def commit() -> str | None:
        return git_commit(work, dirs, heads)

    assert commit() == git(repo, "rev-parse", "HEAD")
    assert commit() == git(repo, "rev-parse", "HEAD")  # answered from the cache
    git(repo, "commit", "-q", "--allow-empty", "-m", "second")
    assert commit() == git(repo, "rev-parse", "HEAD")
    # Branches packed into packed-refs, then a commit that writes the branch loose again.
    git(repo, "pack-refs", "--all")
    assert commit() == git(repo, "rev-parse", "HEAD")
    git(repo, "commit", "-q", "--allow-empty", "-m", "third")
    assert commit() == git(repo, "rev-parse", "HEAD")
    # A detached HEAD, then another branch.
    first = git(repo, "rev-list", "--max-parents=0", "HEAD")
    git(repo, "checkout", "-q", "--detach", first)
    assert commit() == first
    git(repo, "checkout", "-q", "-b", "other")
    git(repo, "commit", "-q", "--allow-empty", "-m", "on other")
    assert commit() == git(repo, "rev-parse", "other")


def test_a_worktree_reads_its_own_branch(tmp_path: Path) -> None:
    repo = new_repo(tmp_path / "repo")
    git(repo, "worktree", "add", "-q", "-b", "side", str(tmp_path / "side"))
    git(tmp_path / "side", "commit", "-q", "--allow-empty", "-m", "side work")
    dirs, heads = GitDirCache(), HeadCache()
    assert git_commit(tmp_path / "side", dirs, heads) == git(repo, "rev-parse", "side")
    assert git_commit(repo, dirs, heads) == git(repo, "rev-parse", "main")
    git(tmp_path / "side", "commit", "-q", "--allow-empty", "-m", "more")
    assert git_commit(tmp_path / "side", dirs, heads) == git(repo, "rev-parse", "side")


def test_where_the_repository_is_is_looked_up_again_after_its_time(tmp_path: Path) -> None:
    work = tmp_path / "project" / "run"
    work.mkdir(parents=True)
    remembered, fresh = GitDirCache(ttl=3600), GitDirCache(ttl=0)
    assert git_commit(work, remembered, HeadCache()) is None
    assert git_commit(work, fresh, HeadCache()) is None
    new_repo_in = tmp_path / "project"
    git(new_repo_in, "init", "-q", "-b", "main")
    git(new_repo_in, "commit", "-q", "--allow-empty", "-m", "first")
    head = git(new_repo_in, "rev-parse", "HEAD")
    assert git_commit(work, fresh, HeadCache()) == head
    # Within its time the cache still says "no repository": what GIT_DIR_TTL trades.
    assert git_commit(work, remembered, HeadCache()) is None


def test_a_repository_that_went_away_is_no_longer_named(tmp_path: Path) -> None:
    repo = new_repo(tmp_path / "repo")
    dirs, heads = GitDirCache(ttl=3600), HeadCache()
    assert git_commit(repo, dirs, heads) == git(repo, "rev-parse", "HEAD")
    subprocess.run(["rm", "-rf", str(repo / ".git")], check=True)
    assert git_commit(repo, dirs, heads) is None
