"""staff accounts, sessions, api tokens, audit, rate counters (2026-11-23)"""

from app.db.migrations.shapes import big_integer, create_table, drop_tables, flag, integer, json, moment, reference, string, timestamps

revision = '0001'
down_revision = None


def upgrade() -> None:
    create_table('api_token',
        string('name', 64),
        string('prefix', 16),
        string('token_hash', 64),
        string('role', 16),
        string('created_by', 64),
        moment('last_used_at', nullable=True),
        moment('revoked_at', nullable=True),
        *timestamps(),
        unique=['token_hash'],
    )
    create_table('audit_entry',
        moment('at'),
        big_integer('actor_id', nullable=True),
        string('actor_name', 64),
        string('action', 64),
        string('target', 128),
        json('detail'),
        string('ip', 64),
        indexes=['action', 'actor_id', 'at'],
    )
    create_table('rate_counter',
        string('key', 200),
        big_integer('window_start'),
        integer('count'),
        big_integer('expires_at'),
        primary_key=['key', 'window_start'],
        indexes=['expires_at'],
    )
    create_table('staff_user',
        string('username', 64),
        string('display_name', 64),
        string('password_hash', 255),
        string('role', 16),
        flag('is_active'),
        moment('last_login_at', nullable=True),
        *timestamps(),
        unique=['username'],
    )
    create_table('staff_session',
        string('token_hash', 64),
        reference('user_id', 'staff_user', ondelete='CASCADE'),
        moment('created_at'),
        moment('expires_at'),
        string('ip', 64),
        string('user_agent', 255),
        unique=['token_hash'],
        indexes=['expires_at', 'user_id'],
    )


def downgrade() -> None:
    drop_tables('staff_session', 'staff_user', 'rate_counter', 'audit_entry', 'api_token')
