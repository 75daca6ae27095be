"""staff accounts, sessions, api tokens, audit, rate counters (2026-11-23)"""

import sqlalchemy as sa

from app.db.migrations.shapes import create_table, drop_tables, moment, reference, timestamps

revision = '0001'
down_revision = None


def upgrade() -> None:
    create_table('api_token',
        sa.Column('name', sa.String(length=64), nullable=False),
        sa.Column('prefix', sa.String(length=16), nullable=False),
        sa.Column('token_hash', sa.String(length=64), nullable=False),
        sa.Column('role', sa.String(length=16), nullable=False),
        sa.Column('created_by', sa.String(length=64), nullable=False),
        moment('last_used_at', nullable=True),
        moment('revoked_at', nullable=True),
        *timestamps(),
        unique=['token_hash'],
    )
    create_table('audit_entry',
        moment('at'),
        sa.Column('actor_id', sa.BigInteger(), nullable=True),
        sa.Column('actor_name', sa.String(length=64), nullable=False),
        sa.Column('action', sa.String(length=64), nullable=False),
        sa.Column('target', sa.String(length=128), nullable=False),
        sa.Column('detail', sa.JSON(), nullable=False),
        sa.Column('ip', sa.String(length=64), nullable=False),
        indexes=['action', 'actor_id', 'at'],
    )
    create_table('rate_counter',
        sa.Column('key', sa.String(length=200), nullable=False),
        sa.Column('window_start', sa.BigInteger(), nullable=False),
        sa.Column('count', sa.Integer(), nullable=False),
        sa.Column('expires_at', sa.BigInteger(), nullable=False),
        primary_key=['key', 'window_start'],
        indexes=['expires_at'],
    )
    create_table('staff_user',
        sa.Column('username', sa.String(length=64), nullable=False),
        sa.Column('display_name', sa.String(length=64), nullable=False),
        sa.Column('password_hash', sa.String(length=255), nullable=False),
        sa.Column('role', sa.String(length=16), nullable=False),
        sa.Column('is_active', sa.Boolean(), nullable=False),
        moment('last_login_at', nullable=True),
        *timestamps(),
        unique=['username'],
    )
    create_table('staff_session',
        sa.Column('token_hash', sa.String(length=64), nullable=False),
        reference('user_id', 'staff_user', ondelete='CASCADE'),
        moment('created_at'),
        moment('expires_at'),
        sa.Column('ip', sa.String(length=64), nullable=False),
        sa.Column('user_agent', sa.String(length=255), nullable=False),
        unique=['token_hash'],
        indexes=['expires_at', 'user_id'],
    )


def downgrade() -> None:
    drop_tables('staff_session', 'staff_user', 'rate_counter', 'audit_entry', 'api_token')
