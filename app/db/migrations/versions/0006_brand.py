"""brand: the business's name, logo, colour and contact phone (one row) (2026-12-01)"""

import sqlalchemy as sa

from app.db.migrations.shapes import create_table, drop_tables, timestamps

revision = '0006'
down_revision = '0005'


def upgrade() -> None:
    create_table('brand',
        sa.Column('name', sa.String(length=64), nullable=False),
        sa.Column('color', sa.String(length=7), nullable=False),
        sa.Column('contact_phone', sa.String(length=20), nullable=False),
        sa.Column('logo', sa.LargeBinary(), nullable=False),
        sa.Column('version', sa.Integer(), nullable=False),
        sa.Column('updated_by', sa.String(length=64), nullable=False),
        *timestamps(),
    )


def downgrade() -> None:
    drop_tables('brand')
